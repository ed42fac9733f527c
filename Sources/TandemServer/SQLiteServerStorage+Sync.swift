import Foundation
import GRDB
public import TandemCore
import TandemProtocol

extension SQLiteServerStorage {
    /// Queues the batch for the next group commit and returns once that commit is durable
    /// (or the batch was refused). See `GroupCommit`.
    public func push(
        _ changes: [Change], from principal: Principal, repush: Bool, nowMillis: UInt64, maxSkewMillis: UInt64, quotaBytes: Int64
    ) async throws -> PushOutcome {
        guard let replica = principal.replica else { throw ServerError.forbidden("Only an enrolled device pushes changes.") }
        return try await withCheckedThrowingContinuation { continuation in
            let batch = GroupCommit.Batch(
                changes: changes, principal: principal, replica: replica, repush: repush, nowMillis: nowMillis,
                maxSkewMillis: maxSkewMillis, quotaBytes: quotaBytes, continuation: continuation)
            if groupCommit.enqueue(batch) { scheduleGroupCommit() }
        }
    }

    /// How many group commits the pushes of this instance took, and how many batches they
    /// held (batches / groups is the number of pushes sharing one fsync).
    public var groupCommitStatistics: (groups: Int, batches: Int) { groupCommit.statistics }

    /// Runs one group on GRDB's writer queue, then schedules the next if batches arrived
    /// meanwhile (behind any other write that queued, so enrollments are not starved).
    func scheduleGroupCommit() {
        pool.asyncWriteWithoutTransaction { db in
            let group = self.groupCommit.takeAll()
            guard !group.isEmpty else {
                if self.groupCommit.finishGroup() { self.scheduleGroupCommit() }
                return
            }
            var results: [Result<PushOutcome, any Error>] = []
            results.reserveCapacity(group.count)
            do {
                try db.inTransaction(.immediate) {
                    for batch in group {
                        // Each batch all-or-nothing: a refused batch rolls back to its savepoint.
                        var outcome = PushOutcome(accepted: 0, replayed: 0)
                        do {
                            try db.inSavepoint {
                                outcome = try Self.apply(batch, db)
                                return .commit
                            }
                            results.append(.success(outcome))
                        } catch {
                            results.append(.failure(error))
                        }
                    }
                    return .commit
                }
            } catch {
                // The commit itself failed: nothing of the group is stored, none is acknowledged.
                results = group.map { _ in .failure(error) }
            }
            // Only now, after the one fsync of the group's commit, is anyone acknowledged.
            var accepted = false
            for (batch, result) in zip(group, results) {
                if case .success(let outcome) = result, outcome.accepted > 0 { accepted = true }
                if case .success(let outcome) = result, outcome.removedText { self.textScrub.due() }
                batch.continuation.resume(with: result)
            }
            if accepted { self.commitSignal.fire() }
            if self.groupCommit.finishGroup() { self.scheduleGroupCommit() }
        }
    }

    /// Validates one batch and merges it, inside the group's transaction. Throws
    /// `ServerError.refused` (before writing anything) when any change is refused.
    static func apply(_ batch: GroupCommit.Batch, _ db: Database) throws -> PushOutcome {
        let changes = batch.changes, principal = batch.principal, replica = batch.replica
        let repush = batch.repush, nowMillis = batch.nowMillis, maxSkewMillis = batch.maxSkewMillis
        var marks: [ReplicaID: HybridTimestamp?] = [:]
        func mark(_ replica: ReplicaID) throws -> HybridTimestamp? {
            if let known = marks[replica] { return known }
            let value = try Self.mark(replica, db)
            marks[replica] = value
            return value
        }
        var memberReplicas: [ReplicaID: Bool] = [:]
        func belongsToMember(_ replica: ReplicaID) throws -> Bool {
            if let known = memberReplicas[replica] { return known }
            // A revoked device's changes are never taken, not even in a re-push.
            let value = try Data.fetchOne(db.cachedStatement(sql: "SELECT member FROM device WHERE replica = ? AND revoked = 0"), arguments: [Data(replica.bytes)])
                .map { Array($0) == principal.member.bytes } ?? false
            memberReplicas[replica] = value
            return value
        }
        // Records this batch creates, and the existing records it edits (nil: unknown).
        var owners: [RecordID: (owner: MemberID, collection: CollectionName)] = [:]
        var existing: [RecordID: StoredRecord?] = [:]
        var refusals: [Refusal] = []
        var accepted: [Change] = []
        var replayed = 0
        // The digest of each change this batch takes, by id: a second change under one id
        // in the same batch is told apart as it would be against the store.
        var taken: [ChangeID: [UInt8]] = [:]
        func refuse(_ change: Change, _ reason: String, permanent: Bool, withMark: Bool = false) {
            guard refusals.count < 1000 else { return }
            refusals.append(.init(
                change: "\(change.timestamp)@\(change.replica.hex)", reason: reason, permanent: permanent,
                mark: withMark ? (try? mark(change.replica))?.map { "\($0)" } : nil))
        }
        if repush {
            // Only a device told `epochChanged` re-pushes, until its next pull (§9.9).
            let window = try principal.device.flatMap { device in
                try Data.fetchOne(db.cachedStatement(sql: "SELECT repush_epoch FROM device WHERE id = ?"), arguments: [Data(device.bytes)])
            }
            guard let window, try window == Data.fetchOne(db.cachedStatement(sql: "SELECT epoch FROM center")) else {
                throw ServerError.badRequest("Tandem-Repush is only for a device re-pushing after the server was restored; pull first (PROTOCOL.md §9.9).")
            }
        }
        for change in changes {
            // A re-push after a restore may carry the member's other devices' changes.
            let allowed = try change.replica == replica || (repush && belongsToMember(change.replica))
            guard allowed else {
                refuse(change, repush ? "the change's replica is not this member's" : "the change's replica is not this device's", permanent: true)
                continue
            }
            // Every change the server accepted from a replica is at or below that replica's
            // mark, so only there can a change be a replay. It is one only when the server
            // accepted that very change (same id, same digest: `accepted`); another change
            // under an accepted id is a new write at an old id (a device whose clock went
            // back, say from a restored home), refused so the device re-stamps it above
            // the mark. So is an id at or below the mark never accepted: taken as it is, it
            // would lose to the replica's later writes of the same field, and the person's
            // edit would come back undone. Only a re-push after a restore (§9.9), whose
            // changes the restored store may lack, takes such ids as they are (§9.3).
            let digest = Secrets.changeDigest(change.canonicalBytes)
            if let earlier = taken[change.id] {
                if earlier == digest { replayed += 1 } else {
                    refuse(change, RefusalReason.idReused, permanent: false, withMark: true)
                }
                continue
            }
            if let mark = try mark(change.replica), change.timestamp <= mark {
                let known = try Data.fetchOne(
                    db.cachedStatement(sql: "SELECT digest FROM accepted WHERE replica = ? AND wall = ? AND counter = ?"),
                    arguments: [Data(change.replica.bytes), Int64(change.timestamp.wallMillis), Int64(change.timestamp.counter)])
                if let known, Array(known) == digest {
                    replayed += 1
                    continue
                }
                if known != nil || !repush {
                    refuse(change, RefusalReason.idReused, permanent: false, withMark: true)
                    continue
                }
            }
            if change.timestamp.wallMillis > nowMillis + maxSkewMillis {
                refuse(change, RefusalReason.clockSkew, permanent: false, withMark: true)
                continue
            }
            let owner: (owner: MemberID, collection: CollectionName)
            if change.kind == .create {
                let known = try owners[change.record] != nil || Self.owner(of: change.record, db) != nil
                guard !known else {
                    refuse(change, "the record exists already; a record has one create", permanent: true)
                    continue
                }
                guard case .string(let name)? = change.value.mapValue?[CreateKey.collection] else {
                    refuse(change, "a create names its collection", permanent: true)
                    continue
                }
                owner = (principal.member, CollectionName(name))
                guard !Schema.serverAuthoritative.contains(owner.collection) else {
                    refuse(change, "\(name) records are the server's", permanent: true)
                    continue
                }
                owners[change.record] = owner
            } else {
                if existing[change.record] == nil, owners[change.record] == nil {
                    existing[change.record] = try Self.owner(of: change.record, db)
                }
                guard let known = owners[change.record] ?? existing[change.record]?.map({ ($0.owner, $0.collection) }) else {
                    refuse(change, "unknown record: its create must come first", permanent: true)
                    continue
                }
                owner = known
            }
            guard owner.owner == principal.member else {
                refuse(change, "the record belongs to another member", permanent: true)
                continue
            }
            do throws(TandemCoreError) {
                try Schema.validate(change, in: owner.collection)
            } catch {
                refuse(change, error.description, permanent: true)
                continue
            }
            accepted.append(change)
            taken[change.id] = digest
        }
        guard refusals.isEmpty else { throw ServerError.refused(refusals, serverTime: nowMillis) }
        // New records get the next numbers: their held rows go at the end of `held`.
        var records: [RecordID: StoredRecord] = [:]
        for (record, owner) in owners {
            try db.cachedStatement(sql: "INSERT INTO record (id, owner, collection) VALUES (?, ?, ?)").execute(
                arguments: [Data(record.bytes), Data(owner.owner.bytes), owner.collection.rawValue])
            records[record] = StoredRecord(number: db.lastInsertedRowID, owner: owner.owner, collection: owner.collection)
        }
        for (record, stored) in existing { if let stored { records[record] = stored } }
        // A device's changes all go to its member's channel (other members' records are
        // refused above), and sequence numbers are handed out in the writer's order, so
        // what the channel gains between these two reads is this batch alone.
        let channelBefore = try Self.channelHead(principal.member, db)
        let (grown, removedText) = try Self.merge(accepted, records: records, created: Set(owners.keys), db)
        // Every accepted change is the member's: the quota counts their channel's held bytes.
        if grown != 0 {
            let usage = try Self.usage(of: principal.member, db)
            guard grown < 0 || usage + grown <= batch.quotaBytes else { throw ServerError.overQuota(bytes: batch.quotaBytes) }
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO member_usage (member, bytes) VALUES (?, ?)").execute(
                arguments: [Data(principal.member.bytes), max(0, usage + grown)])
        }
        for (id, digest) in taken {
            try db.cachedStatement(sql: "INSERT INTO accepted (replica, wall, counter, digest) VALUES (?, ?, ?, ?)").execute(
                arguments: [Data(id.replica.bytes), Int64(id.timestamp.wallMillis), Int64(id.timestamp.counter), Data(digest)])
        }
        let channelAfter = try Self.channelHead(principal.member, db)
        for (pushed, changes) in Dictionary(grouping: accepted, by: \.replica) {
            guard let highest = changes.map(\.timestamp).max(), highest > ((try mark(pushed)) ?? .zero) else { continue }
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO replica_mark (replica, wall, counter) VALUES (?, ?, ?)").execute(
                arguments: [Data(pushed.bytes), Int64(highest.wallMillis), Int64(highest.counter)])
        }
        let step = channelAfter > channelBefore ? ChannelStep(epoch: try Self.epoch(db), from: channelBefore, to: channelAfter) : nil
        let highestOwn = accepted.lazy.filter { $0.replica == replica }.map(\.timestamp).max()
        let pusherMark = [try mark(replica), highestOwn].compactMap { $0 }.max()
        var outcome = PushOutcome(accepted: accepted.count, replayed: replayed, ownChannel: step, mark: pusherMark)
        outcome.removedText = removedText
        return outcome
    }

    static func usage(of member: MemberID, _ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT bytes FROM member_usage WHERE member = ?"), arguments: [Data(member.bytes)]) ?? 0
    }

    public func usage(of member: MemberID) async throws -> Int64 {
        try await pool.read { db in try Self.usage(of: member, db) }
    }

    /// A channel's highest sequence number (0 when it holds nothing).
    static func channelHead(_ channel: MemberID, _ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT seq FROM channel_head WHERE channel = ?"), arguments: [Data(channel.bytes)]) ?? 0
    }

    public func pull(
        _ grants: [Grant], for principal: Principal, limit: Int, check: TokenCheck?,
        starts: @Sendable (_ epoch: String, _ heads: [Int64]) -> [Int64]
    ) async throws -> PullSnapshot {
        try await pool.read { db in
            if let check, try Self.principal(tokenHash: check.tokenHash, db) != check.principal { throw ServerError.unauthorized }
            let epoch = try Self.epoch(db)
            let heads = try grants.map { try Self.channelHead($0.channel, db) }
            let positions = starts(epoch, heads)
            var pages: [ChannelPage] = []
            pages.reserveCapacity(grants.count)
            for (grant, start) in zip(grants, positions) { pages.append(try Self.page(of: grant, after: start, limit: limit, db)) }
            let mark = try principal.replica.flatMap { try Self.mark($0, db) }
            let repush = try principal.device.flatMap { device in
                try Data.fetchOne(db.cachedStatement(sql: "SELECT repush_epoch FROM device WHERE id = ?"), arguments: [Data(device.bytes)])
            }.map(hexString)
            return PullSnapshot(epoch: epoch, heads: heads, mark: mark, repushEpoch: repush, pages: pages)
        }
    }

    public func setRepushWindow(device: RecordID, epoch: String?) async throws {
        let bytes = try epoch.map { Data(try RecordID(hex: $0).bytes) }
        try await pool.write { db in
            try db.execute(sql: "UPDATE device SET repush_epoch = ? WHERE id = ?", arguments: [bytes, Data(device.bytes)])
        }
    }

    /// One page of a grant's channel after `sequence`, keeping only what the grant carries.
    static func page(of grant: Grant, after sequence: Int64, limit: Int, _ db: Database) throws -> ChannelPage {
            var changes: [Change] = []
            var last = sequence
            var scanned = 0
            let rows = try Row.fetchCursor(db.cachedStatement(sql: """
                    SELECT h.seq, h.change, r.collection FROM held h LEFT JOIN record r ON r.number = h.record
                    WHERE h.channel = ? AND h.seq > ? ORDER BY h.seq LIMIT ?
                    """),
                arguments: [Data(grant.channel.bytes), sequence, limit + 1])
            var more = false
            while let row = try rows.next() {
                if scanned == limit { more = true; break }
                scanned += 1
                last = row["seq"]
                let change = try Change(canonicalBytes: Array(row["change"] as Data))
                // The projection decides per field; what it does not carry is never sent.
                guard grant.carries((row["collection"] as String?).map(CollectionName.init), field: change.field) else { continue }
                changes.append(change)
            }
            return ChannelPage(changes: changes, last: last, more: more)
    }

    public func head() async throws -> Int64 {
        try await pool.read { db in try Self.head(db) }
    }

    static func head(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM sequence")) ?? 0
    }

    // MARK: - The commit feed

    public func commits(after position: Int64) async throws -> Commits {
        try await pool.read { db in
            let head = try Self.head(db)
            guard head >= position else { return Commits(head: head, channels: [:], reset: true) }
            guard head > position else { return Commits(head: head, channels: [:]) }
            // Every commit that advances a channel stamps the channel's head with the feed
            // position it takes; a later commit only moves the stamp higher.
            var channels: [MemberID: Int64] = [:]
            for row in try Row.fetchAll(db.cachedStatement(sql: Self.advancedChannels), arguments: [position]) {
                guard let channel = try? MemberID(bytes: row["channel"] as Data) else { continue }
                channels[channel] = row["seq"]
            }
            return Commits(head: head, channels: channels)
        }
    }

    /// Which channels advanced after a feed position, and where each now stands.
    static let advancedChannels = "SELECT channel, seq FROM channel_head WHERE feed > ?"

    /// This process's commits wake the waiter at once; another process's (several servers on
    /// one file) are seen within `crossProcessPoll`.
    public func awaitCommit(after position: Int64, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !Task.isCancelled {
            let fired = commitSignal.fired
            if try await head() != position { return }
            await commitSignal.wait(since: fired, upTo: min(Self.crossProcessPoll, deadline - ContinuousClock.now))
        }
    }

    static let crossProcessPoll: Duration = .milliseconds(20)

    // MARK: - The merged state

    static func mark(_ replica: ReplicaID, _ db: Database) throws -> HybridTimestamp? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT wall, counter FROM replica_mark WHERE replica = ?"), arguments: [Data(replica.bytes)]) else {
            return nil
        }
        return HybridTimestamp(wallMillis: UInt64(row["wall"] as Int64), counter: UInt16(clamping: row["counter"] as Int64))
    }

    /// A record the server holds: its number (the order records came in, which clusters
    /// `held` so that a new record's rows go at its end), owner and collection.
    struct StoredRecord {
        var number: Int64
        var owner: MemberID
        var collection: CollectionName
    }

    static func owner(of record: RecordID, _ db: Database) throws -> StoredRecord? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT number, owner, collection FROM record WHERE id = ?"), arguments: [Data(record.bytes)]),
              let owner = try? MemberID(bytes: row["owner"] as Data)
        else { return nil }
        return StoredRecord(number: row["number"], owner: owner, collection: CollectionName(row["collection"]))
    }

    /// Merges accepted changes with `TandemCore`'s rules; every field whose state changed
    /// gets its held rows replaced, under new sequence numbers, in its owner's channel.
    /// `records` are the records the caller already knows; `created` the records this batch
    /// creates, which hold nothing yet (nothing to read, nothing to delete).
    /// - Returns: how many bytes of held changes the merge added (negative: freed), and
    ///   whether it removed text (a superseded or deleted value that is a string), which
    ///   must then leave the store's files (`TextScrub`).
    @discardableResult
    static func merge(
        _ changes: [Change], records: [RecordID: StoredRecord], created: Set<RecordID>, _ db: Database
    ) throws -> (grown: Int64, removedText: Bool) {
        var ids: [RecordID] = []
        var seen = Set<RecordID>()
        for change in changes where seen.insert(change.record).inserted { ids.append(change.record) }
        var before = ReplicaState()
        var known = records
        for id in ids where !created.contains(id) {
            guard let stored = try known[id] ?? owner(of: id, db) else { continue }
            known[id] = stored
            for bytes in try Data.fetchAll(db.cachedStatement(sql: "SELECT change FROM held WHERE record = ?"), arguments: [stored.number]) {
                before.apply(try Change(canonicalBytes: Array(bytes)))
            }
            for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT field, context FROM covered WHERE record = ?"), arguments: [Data(id.bytes)]) {
                before.joinCovered(try CausalContext(encoded: Array(row["context"] as Data)), record: id, field: try FieldName(row["field"] as String))
            }
        }
        var after = before
        var touched = Set<RecordID>()
        for change in changes where after.apply(change) { touched.insert(change.record) }
        guard !touched.isEmpty else { return (0, false) }
        var grown: Int64 = 0
        var removedText = false
        func size(_ changes: [Change]) -> Int64 { changes.reduce(0) { $0 + Int64($1.canonicalBytes.count) } }
        func noteRemoved(_ changes: [Change], keeping kept: [Change] = []) {
            if !removedText, changes.contains(where: { if case .string = $0.value { !kept.contains($0) } else { false } }) { removedText = true }
        }
        // Each channel numbers its own changes (PROTOCOL.md §9.4a).
        var heads: [MemberID: Int64] = [:]
        for id in ids where touched.contains(id) {
            guard let new = after[id], let stored = known[id] else { continue }
            let owner = stored.owner
            let old = before[id]
            let key = Data(id.bytes)
            let number = stored.number
            func replace(field: FieldName, kind: MergeKind, with held: [Change], replacing previous: [Change]) throws {
                grown += size(held) - size(previous)
                noteRemoved(previous, keeping: held)
                if old != nil {
                    try db.cachedStatement(sql: "DELETE FROM held WHERE record = ? AND field = ? AND kind = ?").execute(
                        arguments: [number, field.rawValue, Int64(kind.rawValue)])
                }
                if heads[owner] == nil { heads[owner] = try channelHead(owner, db) }
                for change in held {
                    heads[owner, default: 0] += 1
                    let sequence = heads[owner, default: 0]
                    try db.cachedStatement(
                        sql: "INSERT INTO held (record, field, kind, wall, counter, replica, seq, channel, change) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ).execute(
                        arguments: [number, field.rawValue, Int64(kind.rawValue), Int64(change.timestamp.wallMillis),
                                    Int64(change.timestamp.counter), Data(change.replica.bytes), sequence,
                                    Data(owner.bytes), Data(change.canonicalBytes)])
                }
            }
            if let create = new.create, create != old?.create {
                try replace(field: .record, kind: .create, with: [create], replacing: old?.create.map { [$0] } ?? [])
            }
            if let tombstone = new.tombstone, tombstone != old?.tombstone {
                if old?.tombstone == nil {
                    try db.cachedStatement(sql: "DELETE FROM held WHERE record = ? AND kind NOT IN (0, 4)").execute(arguments: [number])
                    try db.cachedStatement(sql: "DELETE FROM covered WHERE record = ?").execute(arguments: [key])
                    grown -= old.map { record in record.fields.values.reduce(0) { $0 + size($1.changes) } } ?? 0
                    for state in old?.fields.values.map({ $0 }) ?? [] { noteRemoved(state.changes) }
                }
                try replace(field: .record, kind: .tombstone, with: [tombstone], replacing: old?.tombstone.map { [$0] } ?? [])
            }
            for (fieldKey, state) in new.fields where old?.fields[fieldKey] != state {
                try replace(field: fieldKey.field, kind: fieldKey.kind, with: state.changes, replacing: old?.fields[fieldKey]?.changes ?? [])
                if case .multiValue(let register) = state {
                    try db.cachedStatement(sql: "INSERT OR REPLACE INTO covered (record, field, context) VALUES (?, ?, ?)").execute(
                        arguments: [key, fieldKey.field.rawValue, Data(register.covered.encoded)])
                }
            }
        }
        if !heads.isEmpty {
            // The commit feed's position moves once per merge that advanced a channel.
            try db.cachedStatement(sql: "UPDATE sequence SET value = value + 1").execute()
            let feed = try head(db)
            for (channel, seq) in heads {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO channel_head (channel, seq, feed) VALUES (?, ?, ?)").execute(
                    arguments: [Data(channel.bytes), seq, feed])
            }
        }
        return (grown, removedText)
    }
}

extension SQLiteServerStorage {
    /// The merged state of one member's channel, as the server holds it: what a device of
    /// that member holds once caught up (tests compare canonical dumps).
    public func state(of channel: MemberID) throws -> ReplicaState {
        try pool.read { db in
            var state = ReplicaState()
            for bytes in try Data.fetchAll(db.cachedStatement(sql: "SELECT change FROM held WHERE channel = ?"), arguments: [Data(channel.bytes)]) {
                state.apply(try Change(canonicalBytes: Array(bytes)))
            }
            for row in try Row.fetchAll(db.cachedStatement(sql: """
                SELECT c.record, c.field, c.context FROM covered c JOIN record r ON r.id = c.record WHERE r.owner = ?
                """), arguments: [Data(channel.bytes)]) {
                state.joinCovered(
                    try CausalContext(encoded: Array(row["context"] as Data)), record: try RecordID(bytes: row["record"] as Data),
                    field: try FieldName(row["field"] as String))
            }
            return state
        }
    }
}

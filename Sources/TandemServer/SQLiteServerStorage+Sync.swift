import Foundation
import GRDB
import TandemSQLite
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
            let request = PushRequest(
                changes: changes, principal: principal, replica: replica, repush: repush, nowMillis: nowMillis,
                maxSkewMillis: maxSkewMillis, quotaBytes: quotaBytes)
            let batch = GroupCommit.Batch(request: request, continuation: continuation)
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
                                outcome = try PushRules.apply(batch.request, in: SQLiteTransaction(db))
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

    public func usage(of member: MemberID) async throws -> Int64 {
        try await pool.read { db in try SQLiteTransaction(db).usage(of: member) }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any PullReads) throws -> T) async throws -> T {
        try await pool.read { db in try body(SQLiteTransaction(db)) }
    }

    public func setRepushWindow(device: RecordID, epoch: String?) async throws {
        let bytes = try epoch.map { Data(try RecordID(hex: $0).bytes) }
        try await pool.write { db in
            try db.execute(sql: "UPDATE device SET repush_epoch = ? WHERE id = ?", arguments: [bytes, Data(device.bytes)])
        }
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
        try await commitSignal.awaitHead(after: position, timeout: timeout, poll: Self.crossProcessPoll) { try await head() }
    }

    static let crossProcessPoll: Duration = .milliseconds(20)

}

/// The SQL under the sync rules (`PushRules`, `PullRules`): one transaction of the store,
/// a push's write transaction or a pull's read snapshot.
struct SQLiteTransaction: PushWrites, PullReads {
    let db: Database

    init(_ db: Database) { self.db = db }

    func epoch() throws -> String { try SQLiteServerStorage.epoch(db) }

    func sharingVersion() throws -> [UInt8] {
        var token: [UInt8]?
        try db.query("SELECT token FROM sharing_version", { _ in }) { row in token = row.blob(0) }
        guard let token else { throw ServerError.unavailable("The server store is not initialized: run tandem admin init.") }
        return token
    }

    func principal(tokenHash: [UInt8]) throws -> Principal { try SQLiteServerStorage.principal(tokenHash: tokenHash, db) }

    func mark(of replica: ReplicaID) throws -> HybridTimestamp? {
        var mark: HybridTimestamp?
        try db.query("SELECT wall, counter FROM replica_mark WHERE replica = ?", { $0.blob(replica.bytes) }) { row in
            mark = HybridTimestamp(wallMillis: UInt64(clamping: row.int(0)), counter: UInt16(clamping: row.int(1)))
        }
        return mark
    }

    func marks(of replicas: Set<ReplicaID>) throws -> [ReplicaID: HybridTimestamp] {
        var marks: [ReplicaID: HybridTimestamp] = [:]
        for replica in replicas { marks[replica] = try mark(of: replica) }
        return marks
    }

    func acceptedDigests(of ids: Set<ChangeID>) throws -> [ChangeID: [UInt8]] {
        var digests: [ChangeID: [UInt8]] = [:]
        let statement = try db.cachedStatement(sql: "SELECT digest FROM accepted WHERE replica = ? AND wall = ? AND counter = ?")
        for id in ids {
            let digest = try Data.fetchOne(statement, arguments: [Data(id.replica.bytes), Int64(id.timestamp.wallMillis), Int64(id.timestamp.counter)])
            digests[id] = digest.map(Array.init)
        }
        return digests
    }

    func activeMembers(of replicas: Set<ReplicaID>) throws -> [ReplicaID: MemberID] {
        var members: [ReplicaID: MemberID] = [:]
        let statement = try db.cachedStatement(sql: "SELECT member FROM device WHERE replica = ? AND revoked = 0")
        for replica in replicas {
            members[replica] = try Data.fetchOne(statement, arguments: [Data(replica.bytes)]).flatMap { try? MemberID(bytes: $0) }
        }
        return members
    }

    func repushEpoch(of device: RecordID) throws -> String? {
        var epoch: String?
        try db.query("SELECT repush_epoch FROM device WHERE id = ?", { $0.blob(device.bytes) }) { row in epoch = row.optionalBlob(0).map(hexString) }
        return epoch
    }

    func roles(of members: Set<MemberID>) throws -> [MemberID: Role] {
        var roles: [MemberID: Role] = [:]
        let statement = try db.cachedStatement(sql: "SELECT role FROM member WHERE id = ?")
        for member in members {
            roles[member] = try String.fetchOne(statement, arguments: [Data(member.bytes)]).flatMap(Role.init(rawValue:))
        }
        return roles
    }

    func patients(of mentor: MemberID) throws -> Set<MemberID> {
        Set(try Data.fetchAll(db.cachedStatement(sql: "SELECT member FROM assignment WHERE role = 'mentor' AND carer = ?"), arguments: [Data(mentor.bytes)])
            .compactMap { try? MemberID(bytes: $0) })
    }

    func careTeam(of patient: MemberID) throws -> Set<MemberID> {
        let key = Data(patient.bytes)
        return Set(try Data.fetchAll(db.cachedStatement(sql: """
            SELECT carer FROM assignment WHERE role = 'mentor' AND member = ?
            UNION SELECT s.carer FROM assignment m JOIN assignment s ON s.role = 'supervisor' AND s.member = m.carer
            WHERE m.role = 'mentor' AND m.member = ?
            """), arguments: [key, key]).compactMap { try? MemberID(bytes: $0) })
    }

    func carePatients(of member: MemberID) throws -> Set<MemberID> {
        try members("""
            SELECT member FROM assignment WHERE role = 'mentor' AND carer = ?1
            UNION SELECT m.member FROM assignment s JOIN assignment m ON m.role = 'mentor' AND m.carer = s.member
            WHERE s.role = 'supervisor' AND s.carer = ?1
            """) { $0.blob(member.bytes) }
    }

    func assigned(_ kind: Assignment.Kind, to carer: MemberID) throws -> Set<MemberID> {
        try members("SELECT member FROM assignment WHERE role = ? AND carer = ?") { $0.text(kind.rawValue); $0.blob(carer.bytes) }
    }

    /// The members a query's first column names (every pull of a mentor asks some of these).
    private func members(_ sql: String, _ bind: (inout Binder) -> Void) throws -> Set<MemberID> {
        var members: Set<MemberID> = []
        try db.query(sql, bind) { row in
            if let member = try? MemberID(bytes: row.blob(0)) { members.insert(member) }
        }
        return members
    }

    func carers(_ kind: Assignment.Kind, of member: MemberID) throws -> Set<MemberID> {
        try members("SELECT carer FROM assignment WHERE role = ? AND member = ?") { $0.text(kind.rawValue); $0.blob(member.bytes) }
    }

    func names(of members: Set<MemberID>) throws -> [MemberID: (name: String, role: Role)] {
        // One cached statement stepped per member through SQLite's C API: a mentor's pull
        // asks of every patient, and GRDB's rows cost more than SQLite's lookups.
        var names: [MemberID: (name: String, role: Role)] = [:]
        for member in members {
            try db.query("SELECT name, role FROM member WHERE id = ?", { $0.blob(member.bytes) }) { row in
                if let role = Role(rawValue: row.text(1)) { names[member] = (row.text(0), role) }
            }
        }
        return names
    }

    func enrolledMillis(of members: Set<MemberID>) throws -> [MemberID: Int64] {
        var enrolled: [MemberID: Int64] = [:]
        for member in members {
            try db.query("SELECT created_at FROM member WHERE id = ?", { $0.blob(member.bytes) }) { row in enrolled[member] = row.int(0) }
        }
        return enrolled
    }

    func countedEntries(of patients: Set<MemberID>) throws -> [JournalMetrics] {
        // One pass over the index in the order records came in (it has no index by patient,
        // so that pushes append to it): a center counts most of its patients.
        var entries: [JournalMetrics] = []
        guard !patients.isEmpty else { return entries }
        try db.query("SELECT patient, day, mood, craving, slept, symptoms FROM journal_metric", { _ in }) { row in
            // The id read in place: a generic init over a new array per row was a third of
            // the dashboard's time (365,000 rows).
            guard let id = row.halves(0) else { return }
            let patient = MemberID(high: id.high, low: id.low)
            guard patients.contains(patient) else { return }
            entries.append(JournalMetrics(
                patient: patient, day: Int(row.int(1)), mood: row.optionalInt(2).map(Int.init), craving: row.optionalInt(3).map(Int.init),
                slept: row.optionalInt(4).map(Int.init), symptoms: row.int(5)))
        }
        return entries
    }

    func noteDays(about patients: Set<MemberID>) throws -> [(patient: MemberID, day: Int)] {
        var days: [(patient: MemberID, day: Int)] = []
        for patient in patients.sorted() {
            try db.query("SELECT written FROM note WHERE patient = ?", { $0.blob(patient.bytes) }) { row in
                days.append((patient, Int(row.int(0) / 86_400_000)))
            }
        }
        return days
    }

    func caseloadSpans(of patients: Set<MemberID>) throws -> [CaseloadSpan] {
        var spans: [CaseloadSpan] = []
        guard !patients.isEmpty else { return spans }
        try db.query("SELECT mentor, patient, since, until FROM caseload_span", { _ in }) { row in
            guard let patient = try? MemberID(bytes: row.blob(1)), patients.contains(patient), let mentor = try? MemberID(bytes: row.blob(0)) else { return }
            spans.append(CaseloadSpan(mentor: mentor, patient: patient, since: row.int(2), until: row.optionalInt(3)))
        }
        return spans
    }

    func mentors() throws -> [MemberID: String] {
        var mentors: [MemberID: String] = [:]
        try db.query("SELECT id, name FROM member WHERE role = 'mentor'", { _ in }) { row in
            if let id = try? MemberID(bytes: row.blob(0)) { mentors[id] = row.text(1) }
        }
        return mentors
    }

    func consentRevoked(_ id: RecordID) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT revoked FROM consent WHERE record = ?"), arguments: [Data(id.bytes)])
    }

    func notesShared(with patient: MemberID) throws -> [(note: RecordID, author: MemberID)] {
        // Only a mentor's notes: one written before the role rules by anyone else grants nothing.
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT n.record, n.author FROM note n JOIN member m ON m.id = n.author
            WHERE n.patient = ? AND n.shared = 1 AND m.role = 'mentor' ORDER BY n.record
            """),
                         arguments: [Data(patient.bytes)]).compactMap { row in
            guard let note = try? RecordID(bytes: row["record"] as Data), let author = try? MemberID(bytes: row["author"] as Data) else { return nil }
            return (note, author)
        }
    }

    func held(of record: RecordID, in channel: MemberID, after sequence: Int64, limit: Int) throws -> [HeldRow] {
        try Row.fetchAll(db.cachedStatement(sql: """
                SELECT h.seq, h.change, r.collection FROM record r JOIN held h ON h.record = r.number
                WHERE r.id = ? AND h.channel = ? AND h.seq > ? ORDER BY h.seq LIMIT ?
                """), arguments: [Data(record.bytes), Data(channel.bytes), sequence, limit]
        ).map { row in
            HeldRow(sequence: row["seq"], change: Array(row["change"] as Data), collection: (row["collection"] as String?).map(CollectionName.init))
        }
    }

    func recordHead(_ record: RecordID) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(h.seq) FROM record r JOIN held h ON h.record = r.number WHERE r.id = ?"),
                           arguments: [Data(record.bytes)]) ?? 0
    }

    func consents(to recipient: MemberID) throws -> [ConsentTerms] {
        var consents: [ConsentTerms] = []
        try db.query("SELECT record, patient, scope, expires, revoked FROM consent WHERE recipient = ? ORDER BY record", { $0.blob(recipient.bytes) }) { row in
            guard let id = try? RecordID(bytes: row.blob(0)), let patient = try? MemberID(bytes: row.blob(1)),
                  let scope = ConsentScope(rawValue: row.text(2)) else { return }
            consents.append(ConsentTerms(
                id: id, patient: patient, recipient: recipient, scope: scope, expiresMillis: row.optionalInt(3), revokedMillis: row.optionalInt(4)))
        }
        return consents
    }

    func records(_ ids: Set<RecordID>) throws -> [RecordID: StoredRecord] {
        var records: [RecordID: StoredRecord] = [:]
        let statement = try db.cachedStatement(sql: "SELECT number, owner, collection FROM record WHERE id = ?")
        for id in ids {
            guard let row = try Row.fetchOne(statement, arguments: [Data(id.bytes)]), let owner = try? MemberID(bytes: row["owner"] as Data) else {
                continue
            }
            records[id] = StoredRecord(number: row["number"], owner: owner, collection: CollectionName(row["collection"]))
        }
        return records
    }

    func heldChanges(of records: [StoredRecord]) throws -> [Change] {
        var changes: [Change] = []
        let statement = try db.cachedStatement(sql: "SELECT change FROM held WHERE record = ?")
        for record in records {
            for bytes in try Data.fetchAll(statement, arguments: [record.number]) { changes.append(try Change(canonicalBytes: Array(bytes))) }
        }
        return changes
    }

    func covered(of records: [RecordID]) throws -> [(record: RecordID, field: FieldName, context: CausalContext)] {
        var covered: [(record: RecordID, field: FieldName, context: CausalContext)] = []
        let statement = try db.cachedStatement(sql: "SELECT field, context FROM covered WHERE record = ?")
        for record in records {
            for row in try Row.fetchAll(statement, arguments: [Data(record.bytes)]) {
                covered.append((record, try FieldName(row["field"] as String), try CausalContext(encoded: Array(row["context"] as Data))))
            }
        }
        return covered
    }

    func channelHead(_ channel: MemberID) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT seq FROM channel_head WHERE channel = ?"), arguments: [Data(channel.bytes)]) ?? 0
    }

    func channelHeads(of channels: Set<MemberID>) throws -> [MemberID: Int64] {
        // As `names(of:)`: one cached statement, stepped per channel.
        var heads: [MemberID: Int64] = [:]
        for channel in channels {
            try db.query("SELECT seq FROM channel_head WHERE channel = ?", { $0.blob(channel.bytes) }) { heads[channel] = $0.int(0) }
        }
        return heads
    }

    func usage(of member: MemberID) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT bytes FROM member_usage WHERE member = ?"), arguments: [Data(member.bytes)]) ?? 0
    }

    func held(in channel: MemberID, after sequence: Int64, limit: Int) throws -> [HeldRow] {
        // Stepped through the C API: a new device's sync reads every change of its channels
        // here, and GRDB's rows cost more than the read.
        var rows: [HeldRow] = []
        rows.reserveCapacity(min(limit, 1_024))
        try db.query("""
            SELECT h.seq, h.change, r.collection FROM held h LEFT JOIN record r ON r.number = h.record
            WHERE h.channel = ? AND h.seq > ? ORDER BY h.seq LIMIT ?
            """, {
                $0.blob(channel.bytes)
                $0.int(sequence)
                $0.int(Int64(limit))
            }) { row in
            rows.append(HeldRow(sequence: row.int(0), change: row.blob(1), collection: row.optionalText(2).map(CollectionName.init)))
        }
        return rows
    }

    // MARK: Writes

    func insertRecord(_ id: RecordID, owner: MemberID, collection: CollectionName) throws -> StoredRecord {
        try db.cachedStatement(sql: "INSERT INTO record (id, owner, collection) VALUES (?, ?, ?)").execute(
            arguments: [Data(id.bytes), Data(owner.bytes), collection.rawValue])
        return StoredRecord(number: db.lastInsertedRowID, owner: owner, collection: collection)
    }

    func deleteHeld(of record: StoredRecord, field: FieldName, kind: MergeKind) throws {
        try db.cachedStatement(sql: "DELETE FROM held WHERE record = ? AND field = ? AND kind = ?").execute(
            arguments: [record.number, field.rawValue, Int64(kind.rawValue)])
    }

    func deleteValues(of record: StoredRecord) throws {
        try db.cachedStatement(sql: "DELETE FROM held WHERE record = ? AND kind NOT IN (?, ?)").execute(
            arguments: [record.number, Int64(MergeKind.create.rawValue), Int64(MergeKind.tombstone.rawValue)])
    }

    func deleteCovered(of record: RecordID) throws {
        try db.cachedStatement(sql: "DELETE FROM covered WHERE record = ?").execute(arguments: [Data(record.bytes)])
    }

    func insertHeld(_ change: Change, of record: StoredRecord, field: FieldName, kind: MergeKind, sequence: Int64) throws {
        try db.cachedStatement(
            sql: "INSERT INTO held (record, field, kind, wall, counter, replica, seq, channel, change) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ).execute(
            arguments: [record.number, field.rawValue, Int64(kind.rawValue), Int64(change.timestamp.wallMillis),
                        Int64(change.timestamp.counter), Data(change.replica.bytes), sequence,
                        Data(record.owner.bytes), Data(change.canonicalBytes)])
    }

    func setCovered(_ context: CausalContext, of record: RecordID, field: FieldName) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO covered (record, field, context) VALUES (?, ?, ?)").execute(
            arguments: [Data(record.bytes), field.rawValue, Data(context.encoded)])
    }

    func advance(_ heads: [MemberID: Int64]) throws {
        try db.cachedStatement(sql: "UPDATE sequence SET value = value + 1").execute()
        let feed = try SQLiteServerStorage.head(db)
        for (channel, seq) in heads {
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO channel_head (channel, seq, feed) VALUES (?, ?, ?)").execute(
                arguments: [Data(channel.bytes), seq, feed])
        }
    }

    func setUsage(_ bytes: Int64, of member: MemberID) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO member_usage (member, bytes) VALUES (?, ?)").execute(
            arguments: [Data(member.bytes), bytes])
    }

    func recordAccepted(_ id: ChangeID, digest: [UInt8]) throws {
        try db.cachedStatement(sql: "INSERT INTO accepted (replica, wall, counter, digest) VALUES (?, ?, ?, ?)").execute(
            arguments: [Data(id.replica.bytes), Int64(id.timestamp.wallMillis), Int64(id.timestamp.counter), Data(digest)])
    }

    func setMark(_ mark: HybridTimestamp, of replica: ReplicaID) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO replica_mark (replica, wall, counter) VALUES (?, ?, ?)").execute(
            arguments: [Data(replica.bytes), Int64(mark.wallMillis), Int64(mark.counter)])
    }

    func setConsent(_ terms: ConsentTerms) throws {
        try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO consent (record, patient, recipient, scope, expires, revoked) VALUES (?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                Data(terms.id.bytes), Data(terms.patient.bytes), Data(terms.recipient.bytes), terms.scope.rawValue,
                terms.expiresMillis, terms.revokedMillis,
            ])
    }

    func deleteConsent(_ id: RecordID) throws {
        try db.cachedStatement(sql: "DELETE FROM consent WHERE record = ?").execute(arguments: [Data(id.bytes)])
    }

    func setNote(_ id: RecordID, author: MemberID, patient: MemberID, shared: Bool, writtenMillis: Int64) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO note (record, author, patient, shared, written) VALUES (?, ?, ?, ?, ?)").execute(
            arguments: [Data(id.bytes), Data(author.bytes), Data(patient.bytes), shared, writtenMillis])
    }

    /// The note index as `v11-note-index` filled it, before notes knew when they were written.
    func setNote(_ id: RecordID, author: MemberID, patient: MemberID, shared: Bool) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO note (record, author, patient, shared) VALUES (?, ?, ?, ?)").execute(
            arguments: [Data(id.bytes), Data(author.bytes), Data(patient.bytes), shared])
    }

    func deleteNote(_ id: RecordID) throws {
        try db.cachedStatement(sql: "DELETE FROM note WHERE record = ?").execute(arguments: [Data(id.bytes)])
    }

    func setJournalMetrics(_ metrics: JournalMetrics, of record: StoredRecord) throws {
        try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO journal_metric (number, patient, day, mood, craving, slept, symptoms) VALUES (?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                record.number, Data(metrics.patient.bytes), metrics.day, metrics.mood, metrics.craving, metrics.slept, metrics.symptoms,
            ])
    }

    func deleteJournalMetrics(of record: StoredRecord) throws {
        try db.cachedStatement(sql: "DELETE FROM journal_metric WHERE number = ?").execute(arguments: [record.number])
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

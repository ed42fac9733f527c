import Foundation
import TandemCompression
public import TandemCore
public import TandemProtocol
public import TandemStore

/// The device's sync driver: enrolls a home, pushes its outbox, pulls its subscriptions.
///
/// ```swift
/// let report = try await Syncer(store: store).sync()
/// ```
public struct Syncer: Sendable {
    public let store: ReplicaStore
    public let wallClock: any WallClock
    public var allowInsecure: Bool

    public init(store: ReplicaStore, wallClock: any WallClock = SystemWallClock(), allowInsecure: Bool = false) {
        self.store = store
        self.wallClock = wallClock
        self.allowInsecure = allowInsecure
    }

    /// What one sync did.
    public struct Report: Codable, Sendable, Equatable {
        public init() {}

        public var pushed: Int = 0
        public var replayed: Int = 0
        public var pulled: Int = 0
        public var changedLocally: Int = 0
        public var waiting: Int = 0
        public var quarantined: Int = 0
        public var restamped: Int = 0
        public var purged: Int = 0
        public var repushed: Int = 0
        /// What was sent and received, counted as a person thinks of it: records (journal
        /// entries, notes, …) by collection. The counts above are of changes (fields).
        public var recordsSent: [String: Int] = [:]
        public var recordsReceived: [String: Int] = [:]
        /// Request and answer bodies, as they crossed the network.
        public var bytesSent: Int = 0
        public var bytesReceived: Int = 0
        /// Entries of the member's own accounting of disclosures received (who was sent
        /// their records), and where the server's chain stopped following from the entries
        /// this device holds, if it did.
        public var disclosuresReceived: Int = 0
        public var accountingBrokenAt: Int64? = nil
        /// The accounting could not be fetched this time (the data itself synced).
        public var accountingFailed: Bool? = nil
        /// Entries received in this sync that record a read of the member's journal under
        /// emergency access (42 CFR §2.51): the member is told of each (nil: none).
        public var emergencyReads: [DisclosureEntry]? = nil
    }

    /// How far a sync is, for a progress display: reported after every batch sent and
    /// every page received.
    public struct Progress: Sendable, Equatable {
        /// Outbox changes sent so far (accepted or replayed), of `toSend` at the start.
        public var sent = 0
        public var toSend = 0
        /// Changes received so far; the total is not known in advance.
        public var received = 0

        public init(sent: Int = 0, toSend: Int = 0, received: Int = 0) {
            self.sent = sent
            self.toSend = toSend
            self.received = received
        }
    }

    /// Enrolls the store's replica with a server, binding the home to the code's member.
    ///
    /// - Parameter role: the role the home was made for (nil for a home made by enrolling).
    public static func enroll(
        store: ReplicaStore, server: String, code: String, deviceName: String, role: Role?, allowInsecure: Bool,
        wallClock: any WallClock = SystemWallClock()
    ) async throws -> EnrollResponse {
        let transport = try HTTPTransport(server: server, allowInsecure: allowInsecure)
        let request = EnrollRequest(
            code: code, replica: store.identity.replica.hex, deviceName: deviceName,
            role: role?.rawValue, member: try store.binding()?.member.hex)
        let answer: EnrollResponse = try await transport.postJSON("/v1/enroll", token: nil, request)
        guard let member = try? MemberID(hex: answer.member), let role = Role(rawValue: answer.role) else {
            throw SyncError.badAnswer("enrollment")
        }
        try store.bind(
            .init(server: transport.server, token: answer.token, member: member, epoch: answer.epoch, lastSyncMillis: nil),
            role: role, name: answer.name, nowMillis: wallClock.nowMillis())
        return answer
    }

    /// Asks the server for a code with which this member adds another device.
    public func link() async throws -> LinkResponse {
        guard let binding = try store.binding() else { throw SyncError.notEnrolled }
        let transport = try HTTPTransport(server: binding.server, allowInsecure: allowInsecure)
        return try await transport.postJSON("/v1/link", token: binding.token, [String: String]())
    }

    /// This member's devices, as the server knows them.
    public func devices() async throws -> [DeviceInfo] {
        try await devicesMarkingThisOne().devices
    }

    /// The member's whole accounting of disclosures as the server holds it now, from its
    /// first entry kept (what `tandem audit verify` checks against the device's copy), and
    /// where it starts when it was pruned, with the server's time.
    public func serverAccounting() async throws -> (start: ChainStart?, entries: [DisclosureEntry], serverTime: UInt64) {
        guard let binding = try store.binding() else { throw SyncError.notEnrolled }
        let transport = try HTTPTransport(server: binding.server, allowInsecure: allowInsecure)
        var entries: [DisclosureEntry] = []
        var start: ChainStart? = nil
        while true {
            let after = entries.last?.sequence ?? 0
            let answer: AuditResponse = try await transport.get("/v1/audit?after=\(after)", token: binding.token)
            if entries.isEmpty, let first = answer.start { start = first }
            // Each page must go on from the last (the first from the chain's start): a server
            // that repeats or skips is refused rather than followed forever.
            let from = entries.last?.sequence ?? start?.sequence ?? 0
            guard answer.entries.first.map({ $0.sequence == from + 1 }) ?? true, entries.count + answer.entries.count <= 10_000_000 else {
                throw SyncError.badAnswer("/v1/audit")
            }
            entries += answer.entries
            guard answer.more, !answer.entries.isEmpty else { return (start, entries, answer.serverTime) }
        }
    }

    /// A patient's journal, read under the caller's emergency access (a staff member's
    /// device): nothing of it is kept on this device (PROTOCOL.md §9.17).
    public func emergencyRead(patient: String) async throws -> EmergencyReadResponse {
        guard let binding = try store.binding() else { throw SyncError.notEnrolled }
        let transport = try HTTPTransport(server: binding.server, allowInsecure: allowInsecure)
        return try await transport.postJSON("/v1/emergency/journal", token: binding.token, EmergencyReadRequest(patient: patient))
    }

    /// The center's de-identified statistics (a staff member's device, PROTOCOL.md §9.19).
    /// `from` and `to` are dates (`YYYY-MM-DD`), `cohort` a month (`YYYY-MM`), `caseload` a
    /// mentor's name or member id.
    public func outcomes(from: String?, to: String?, cohort: String?, caseload: String? = nil) async throws -> OutcomeReport {
        guard let binding = try store.binding() else { throw SyncError.notEnrolled }
        let transport = try HTTPTransport(server: binding.server, allowInsecure: allowInsecure)
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&+=?#")
        let query = [("from", from), ("to", to), ("cohort", cohort), ("caseload", caseload)].compactMap { name, value in
            value.map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
        }
        return try await transport.get("/v1/outcomes" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")), token: binding.token)
    }

    /// What `verifyAccounting` found: how many entries the server's chain holds, the first
    /// entry that breaks it or differs from what this device received (nil: none), and
    /// the last head this device was shown that still holds before that.
    public struct AccountingCheck: Sendable {
        public var entries: Int
        public var brokenAt: Int64?
        public var confirmed: (head: AccountingHead, seenMillis: UInt64)?
    }

    /// Checks the server's accounting of disclosures now against itself (each entry follows
    /// from the one before, from the chain's start) and against every entry and head this
    /// device received: an entry edited, removed or reordered since is found.
    public func verifyAccounting() async throws -> AccountingCheck {
        guard let member = try store.binding()?.member else { throw SyncError.notEnrolled }
        let (start, server, serverTime) = try await serverAccounting()
        let chain = server.compactMap { $0.disclosure(of: member) }
        let from = start?.link
        var brokenAt: Int64? = chain.count == server.count
            ? Disclosure.firstBreak(in: chain, from: from)?.sequence : (server.first { $0.disclosure(of: member) == nil }?.sequence ?? 1)
        // A start pruned too early, as far as this device can tell, is entries removed.
        if let start, let early = try prunedEarly(start, serverTime: serverTime) { brokenAt = min(brokenAt ?? .max, early) }
        var bySequence = Dictionary(server.map { ($0.sequence, $0.hash) }, uniquingKeysWith: { first, _ in first })
        if let start { bySequence[start.sequence] = start.hash }
        // What the device saw before the chain's start was pruned since: only the start's
        // own entry is left to compare.
        let pruned = { (sequence: Int64) in sequence < (start?.sequence ?? 0) }
        for entry in try store.disclosureEntries() where !pruned(entry.sequence) && bySequence[entry.sequence] != entry.hash {
            brokenAt = min(brokenAt ?? .max, entry.sequence)
        }
        let heads = try store.accountingHeads()
        for (head, _) in heads where head.sequence > 0 && !pruned(head.sequence) && bySequence[head.sequence] != head.hash {
            brokenAt = min(brokenAt ?? .max, head.sequence)
        }
        let confirmed = heads.filter { bySequence[$0.head.sequence] == $0.head.hash && $0.head.sequence < (brokenAt ?? .max) }.last
        return AccountingCheck(entries: server.count, brokenAt: brokenAt, confirmed: confirmed)
    }

    public func devicesMarkingThisOne() async throws -> (devices: [DeviceInfo], current: String?) {
        guard let binding = try store.binding() else { throw SyncError.notEnrolled }
        let transport = try HTTPTransport(server: binding.server, allowInsecure: allowInsecure)
        let answer: DevicesResponse = try await transport.get("/v1/devices", token: binding.token)
        return (answer.devices, answer.device)
    }

    /// An outbox is never stuck: permanently refused changes are set aside (a refused
    /// create with its record's other changes), and a clock-skew refusal re-stamps the
    /// outbox above the server's mark with the server's time.
    private func handle(
        _ refusals: [Refusal], serverTime: UInt64, entries: [(position: Int64, change: Change)],
        restamps: inout Int, report: inout Report
    ) throws {
        let permanent = refusals.filter(\.permanent)
        if !permanent.isEmpty {
            let refused = Set(permanent.map(\.change))
            let positions = Set(entries.filter { refused.contains(ChangeKey.text(of: $0.change.id)) }.map(\.position))
            let records = Set(entries.filter { refused.contains(ChangeKey.text(of: $0.change.id)) && $0.change.kind == .create }.map(\.change.record))
            let reason = Set(permanent.map(\.reason)).sorted().joined(separator: "; ")
            report.quarantined += try store.quarantine(positions: positions, records: records, reason: reason, nowMillis: wallClock.nowMillis())
            return
        }
        // Transient: stamped too far ahead (`clock-skew`), or under an id the server accepted
        // another change with (`id-reused`: a clock that went back). Either way the device
        // re-stamps above the replica's mark, from the first reused id on.
        let restampable = refusals.filter { $0.reason == RefusalReason.clockSkew || $0.reason == RefusalReason.idReused }
        guard let first = restampable.first, restamps < 3 else {
            throw SyncError.refused(refusals, serverTime: serverTime)
        }
        restamps += 1
        let mark = first.mark.flatMap(ChangeKey.timestamp)
        let reused = restampable.filter { $0.reason == RefusalReason.idReused }
            .compactMap { ChangeKey.id($0.change)?.timestamp }.min()
        report.restamped += try store.restamp(mark: mark, reused: reused, serverTimeMillis: serverTime, localMillis: wallClock.nowMillis())
    }

    /// Pushes every change held for the member's own records with `Tandem-Repush: 1`;
    /// changes the restored server refuses (say, of a device it no longer knows) are
    /// left out and come back when that device enrolls again.
    private func repush(_ transport: HTTPTransport, token: String) async throws -> Int {
        var changes = try store.ownRecordChanges()
        var accepted = 0
        var start = 0
        while start < changes.count {
            let end = min(start + 1_000, changes.count)
            let batch = Array(changes[start..<end])
            do {
                let packed = try Deflate.compress(ChangeBatch(batch).encoded())
                let data = try await transport.post(
                    "/v1/push", token: token, contentType: "application/octet-stream", body: packed, headers: ["Tandem-Repush": "1"])
                accepted += (try? JSONDecoder().decode(PushResponse.self, from: data))?.accepted ?? 0
                start = end
            } catch SyncError.refused(let refusals, _) {
                let refused = Set(refusals.map(\.change))
                let kept = batch.filter { !refused.contains(ChangeKey.text(of: $0.id)) }
                guard kept.count < batch.count else { throw SyncError.refused(refusals, serverTime: 0) }
                changes.replaceSubrange(start..<end, with: kept)
            }
        }
        return accepted
    }

    /// One pull answer, decoded, with the bytes it took.
    struct FetchedPage: Sendable {
        var answer: BinaryPull.Head
        var pages: [ReplicaStore.PulledPage]
        var sent: Int
        var received: Int
        /// The subscriptions the request named (`PullRequest.subscriptions`): a compact
        /// answer grants exactly these, whatever the store has applied since it was read.
        var held: [(key: String, until: UInt64?)]
    }

    /// How many changes a pull asks for in its `n`th answer (from 0) of one sync, all its
    /// subscriptions' pages together (PROTOCOL.md §9.4): 2,000 at first, so a caught-up
    /// device or a short catch-up gets its answer at once and a new mentor's device starts
    /// merging while the server reads the next, then doubling up to 64,000 while the
    /// server has more. Each answer is merged in one
    /// transaction, and a store whose records are spread over its file rewrites fewer pages
    /// per change in larger transactions (docs/benchmarks.md, initial sync).
    public static func pageLimit(_ n: Int) -> Int {
        min(2_000 << min(n, 5), 64_000)
    }

    /// Asks for the pages after `cursors` (in the binary answer, PROTOCOL.md §9.4; a server
    /// that answers JSON is read as well) and decodes them, in a task of its own.
    /// What the request names (its cursors, the directory and the subscriptions held) is
    /// read now, before the caller applies the page it holds: what the answer is read
    /// against does not depend on how far that apply has come.
    private func fetchPage(_ transport: HTTPTransport, token: String, cursors: [String: String], limit: Int) throws -> Task<FetchedPage, any Error> {
        let held = try store.heldSubscriptions()
        let directory = try store.directoryDigest()
        return Task {
            let request = try JSONEncoder().encode(PullRequest(
                cursors: cursors, limit: limit, directory: directory, subscriptions: SubscriptionDigest.of(held)))
            let (data, type) = try await transport.postTyped(
                "/v1/pull", token: token, contentType: "application/json", body: Array(request), headers: ["Accept": BinaryPull.mediaType])
            var head: BinaryPull.Head
            let deflated: [[UInt8]]
            if type == BinaryPull.mediaType {
                guard let answer = try? BinaryPull.decode(Array(data)) else { throw SyncError.badAnswer("/v1/pull") }
                (head, deflated) = answer
            } else {
                guard let answer = try? JSONDecoder().decode(PullResponse.self, from: data) else { throw SyncError.badAnswer("/v1/pull") }
                var pages: [BinaryPull.Head.Page] = []
                var bytes: [[UInt8]] = []
                for page in answer.pages {
                    guard let packed = Data(base64Encoded: page.changes) else { throw SyncError.badAnswer("/v1/pull") }
                    pages.append(.init(key: page.key, bytes: packed.count, cursor: page.cursor, more: page.more))
                    bytes.append(Array(packed))
                }
                head = .init(
                    epoch: answer.epoch, epochChanged: answer.epochChanged, subscriptions: answer.subscriptions, pages: pages,
                    mark: answer.mark, serverTime: answer.serverTime)
                head.directoryDigest = answer.directoryDigest
                head.directory = answer.directory
                head.accounting = answer.accounting
                deflated = bytes
            }
            var pages: [ReplicaStore.PulledPage] = []
            for (page, bytes) in zip(head.pages, deflated) {
                guard let inflated = try? Deflate.decompress(bytes, limit: 64 << 20),
                      let batch = try? ChangeBatch(decoding: inflated, limits: .init(maxBytes: 64 << 20, maxChanges: 100_000))
                else { throw SyncError.badAnswer("pull") }
                pages.append(.init(key: page.key, changes: batch.changes, cursor: page.cursor))
            }
            return FetchedPage(answer: head, pages: pages, sent: request.count, received: data.count, held: held)
        }
    }

    /// Pushes the outbox, then (unless told not to pull) pulls every subscription until
    /// caught up.
    public func sync(batchSize: Int = 1_000, pull: Bool = true, progress: (@Sendable (Progress) -> Void)? = nil) async throws -> Report {
        guard let binding = try store.binding() else { throw SyncError.notEnrolled }
        let transport = try HTTPTransport(server: binding.server, allowInsecure: allowInsecure)
        var report = Report()
        // What a consent's expiry ended is purged first, whether the server answers or not.
        report.purged += try store.purgeExpired(localMillis: wallClock.nowMillis())
        var sentRecords = Set<RecordID>()
        var receivedRecords = Set<RecordID>()
        var overQuota: SyncError? = nil
        var done = Progress(toSend: try store.outboxCount())
        progress?(done)
        // Push: whole batches, in outbox order; an acknowledged batch leaves the outbox.
        var restamps = 0
        while true {
            let entries = try store.outboxEntries(limit: batchSize)
            guard let last = entries.last else { break }
            let packed = try Deflate.compress(ChangeBatch(entries.map(\.change)).encoded())
            do {
                report.bytesSent += packed.count
                let data = try await transport.post("/v1/push", token: binding.token, contentType: "application/octet-stream", body: packed)
                report.bytesReceived += data.count
                guard let answer = try? JSONDecoder().decode(PushResponse.self, from: data) else { throw SyncError.badAnswer("push") }
                // What this push added to the member's channel need not come back in the pull.
                // From the channel's very start, a device with no cursor yet may take it too.
                let advancing = (answer.advanced ?? []).map { advance in
                    (key: advance.key, from: advance.from, to: advance.to, ifAbsent: (try? Cursor(parsing: advance.from))?.sequence == 0)
                }
                try store.acknowledge(
                    through: last.position, advancing: advancing,
                    mark: answer.mark.flatMap(ChangeKey.timestamp))
                report.pushed += answer.accepted
                report.replayed += answer.replayed
                for change in entries.map(\.change) { sentRecords.insert(change.record) }
                done.sent = min(done.toSend, done.sent + entries.count)
                progress?(done)
            } catch SyncError.refused(let refusals, let serverTime) {
                try handle(refusals, serverTime: serverTime, entries: entries, restamps: &restamps, report: &report)
            } catch let error as SyncError where error.code == ErrorCode.overQuota.rawValue {
                // The member's space on the server is full: what waits stays in the outbox,
                // but the pull still brings what others wrote; the error is said after it.
                overQuota = error
                break
            }
        }
        guard pull else {
            if let overQuota { throw overQuota }
            try store.recordSync(nowMillis: wallClock.nowMillis())
            report.waiting = try store.outboxCount()
            report.recordsSent = try Self.byCollection(sentRecords, store)
            return report
        }
        // Pull until no subscription has more; each answer lists every subscription the
        // device holds, and the store purges what none of them carries any more. The next
        // page is asked for (with the cursors the answer carries) while this one is applied,
        // so the server's work and the device's overlap; the store saves each page's cursors
        // with its merge, so an interruption anywhere resumes from what was applied.
        var fetched = 0
        var accounting: AccountingHead? = nil
        var next = try fetchPage(transport, token: binding.token, cursors: try store.cursors(), limit: Self.pageLimit(fetched))
        defer { next.cancel() }
        while true {
            let page = try await next.value
            report.bytesSent += page.sent
            report.bytesReceived += page.received
            let answer = page.answer
            if answer.epochChanged {
                // A restored server: give back everything this member wrote that the backup
                // may lack, then read every subscription again from zero.
                report.repushed += try await repush(transport, token: binding.token)
                try store.startNewEpoch(answer.epoch)
                fetched = 0
                next = try fetchPage(transport, token: binding.token, cursors: try store.cursors(), limit: Self.pageLimit(fetched))
                continue
            }
            if answer.more {
                fetched += 1
                // The cursors this answer carries, and the held ones of the subscriptions a
                // compact answer left out (they are caught up).
                let cursors = try store.cursors().merging(page.pages.map { ($0.key, $0.cursor) }, uniquingKeysWith: { _, answered in answered })
                next = try fetchPage(transport, token: binding.token, cursors: cursors, limit: Self.pageLimit(fetched))
            }
            var active: [String: Projection?] = [:]
            var until: [String: UInt64] = [:]
            if let subscriptions = answer.subscriptions {
                for subscription in subscriptions {
                    // A projection this version does not know carries nothing here (never every field).
                    if subscription.projection == "owner" {
                        active[subscription.key] = .some(nil)
                    } else if let projection = Projection(rawValue: subscription.projection) {
                        active[subscription.key] = projection
                    }
                    if let end = subscription.until { until[subscription.key] = end }
                }
            } else {
                // A compact answer: the server grants what the request named, read when it
                // was made. Not what the store holds now: a page applied meanwhile may have
                // added a subscription the server has since ended, which must be purged.
                for (key, end) in page.held {
                    if let projection = SubscriptionKey.projection(of: key) { active[key] = projection }
                    if let end { until[key] = end }
                }
            }
            // The people this member deals with, replaced whole when the server sends them.
            if let directory = answer.directory, let digest = answer.directoryDigest {
                try store.replaceDirectory(try directory.map(Self.directoryEntry), digest: digest)
            }
            if let head = answer.accounting { accounting = head }
            let result = try store.applyPulled(
                page.pages, active: active, until: until, mark: answer.mark.flatMap(ChangeKey.timestamp), serverTimeMillis: answer.serverTime,
                localMillis: wallClock.nowMillis())
            report.pulled += page.pages.reduce(0) { $0 + $1.changes.count }
            if receivedRecords.count < Self.recordsCounted {
                for page in page.pages { for change in page.changes { receivedRecords.insert(change.record) } }
            }
            report.changedLocally += result.changed
            report.purged += result.purged
            done.received = report.pulled
            progress?(done)
            if !answer.more { break }
        }
        if let accounting {
            // The data is applied already: the accounting failing to arrive does not fail the
            // sync; the next one fetches it.
            do { try await fetchAccounting(to: accounting, transport, token: binding.token, &report) } catch { report.accountingFailed = true }
        }
        if let overQuota { throw overQuota }
        try store.recordSync(nowMillis: wallClock.nowMillis())
        report.waiting = try store.outboxCount()
        report.recordsSent = try Self.byCollection(sentRecords, store)
        report.recordsReceived = try Self.byCollection(receivedRecords, store)
        return report
    }

    /// Where a server's chain start shows entries pruned before the shortest retention, as far
    /// as this device can tell (nil: it cannot tell so). The start's own time is the
    /// server's word; what the device itself holds is not: every entry it holds up to the
    /// start must be that old at the server's time, its entry at the start must be the
    /// start, and every head it saw before the start must have been seen that long ago (the
    /// entries after that head did not exist yet, and the start is one of them).
    private func prunedEarly(_ start: ChainStart, serverTime: UInt64) throws -> Int64? {
        guard start.link != nil else { return 1 }
        let limit = Int64(clamping: serverTime) - ChainStart.minimumRetentionMillis
        guard start.isOldEnough(atServerMillis: Int64(clamping: serverTime)) else { return start.sequence }
        for entry in try store.disclosureEntries() where entry.sequence <= start.sequence {
            if entry.at > limit { return entry.sequence }
            if entry.sequence == start.sequence, entry.hash != start.hash || entry.at != start.at { return entry.sequence }
        }
        for (head, seen) in try store.accountingHeads() where head.sequence > 0 && head.sequence < start.sequence {
            if Int64(clamping: seen) > limit { return head.sequence + 1 }
        }
        return nil
    }

    /// Keeps the head of the member's accounting of disclosures that the pull showed and,
    /// when it is past what the device holds, fetches the entries up to it (PROTOCOL.md
    /// §9.16), each checked against the one before.
    private func fetchAccounting(to head: AccountingHead, _ transport: HTTPTransport, token: String, _ report: inout Report) async throws {
        try store.noteAccountingHead(head, seenMillis: wallClock.nowMillis())
        var tail = try store.accountingTail().sequence
        // A head behind what this device holds: the server's chain lost entries.
        if head.sequence < tail {
            report.accountingBrokenAt = head.sequence + 1
            return
        }
        while tail < head.sequence {
            let answer: AuditResponse = try await transport.get("/v1/audit?after=\(tail)", token: token)
            // Entries pruned on the server before this device fetched them: it goes on from the
            // chain's start, if the server kept them the shortest retention at least.
            var start: (sequence: Int64, hash: [UInt8])? = nil
            if let first = answer.start, first.sequence > tail {
                if let early = try prunedEarly(first, serverTime: answer.serverTime) {
                    report.accountingBrokenAt = early
                    return
                }
                start = first.link
            }
            let broken = try store.appendDisclosures(answer.entries, from: start)
            let kept = answer.entries.filter { entry in broken.map { entry.sequence < $0 } ?? true }
            report.disclosuresReceived += kept.count
            let emergencies = kept.filter { $0.scope == DisclosureScope.emergency }
            if !emergencies.isEmpty { report.emergencyReads = (report.emergencyReads ?? []) + emergencies }
            if let broken {
                report.accountingBrokenAt = broken
                return
            }
            let last = try store.accountingTail().sequence
            guard answer.more, last > tail else { break }
            tail = last
        }
    }

    static func directoryEntry(_ member: DirectoryMember) throws -> ReplicaStore.DirectoryEntry {
        guard let id = try? MemberID(hex: member.member), let role = Role(rawValue: member.role), !member.name.isEmpty, member.name.utf8.count <= 200 else {
            throw SyncError.badAnswer("/v1/pull")
        }
        return ReplicaStore.DirectoryEntry(member: id, name: member.name, role: role)
    }

    /// Records counted per sync for the summary; a longer catch-up says "at least" this many.
    static let recordsCounted = 10_000

    /// How many of `records` each collection has (purged or unknown records are `other`).
    static func byCollection(_ records: Set<RecordID>, _ store: ReplicaStore) throws -> [String: Int] {
        guard !records.isEmpty else { return [:] }
        let known = try store.collections(of: records)
        var counts: [String: Int] = [:]
        for record in records { counts[known[record]?.rawValue ?? "other", default: 0] += 1 }
        return counts
    }
}

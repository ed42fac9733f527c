public import TandemCore
public import TandemProtocol

// The accounting of disclosures (issue 14; 42 CFR §2.24, HIPAA §164.528): every delivery
// of a member's records to anyone else is recorded before the page that carries them is
// sent, in a hash chain per member whose records they are. The rules are here, once;
// stores keep the entries through `AccountingWrites` and hand them out through
// `ServerAdministration.disclosures`.

/// A delivery a pull is about to make: the entry it becomes once placed in its chain.
public struct Delivery: Sendable, Equatable {
    public var subject: MemberID
    public var recipient: MemberID
    public var device: RecordID?
    public var scope: String
    public var consent: RecordID?
    public var records: [RecordID]

    public init(subject: MemberID, recipient: MemberID, device: RecordID?, scope: String, consent: RecordID?, records: [RecordID]) {
        self.subject = subject
        self.recipient = recipient
        self.device = device
        self.scope = scope
        self.consent = consent
        self.records = records
    }
}

/// What the accounting needs of a store, in one write transaction that is durable before
/// it returns. Two pulls recording into one member's chain at once must not both read the
/// same head: a store with one writer (SQLite) serializes them; a store with several
/// (PostgreSQL) must lock the chain's head in `chainHeads` until commit (`SELECT … FOR
/// UPDATE` on a head row, or a transaction-scoped advisory lock on the member), and keep
/// `(subject, sequence)` unique.
public protocol AccountingWrites {
    /// The last entry of each subject's chain among `subjects` (those with one).
    func chainHeads(of subjects: Set<MemberID>) throws -> [MemberID: (sequence: Int64, hash: [UInt8])]
    /// Where a member's chain starts once pruned (nil: never pruned).
    func chainStart(of subject: MemberID) throws -> ChainStart?
    func append(_ disclosures: [Disclosure]) throws
}

enum AccountingRules {
    /// The deliveries of one pull answer: each page that carries another member's records
    /// (a caught-up page, or one whose changes the projection left out, delivers nothing).
    static func deliveries(of snapshot: PullSnapshot, to principal: Principal) -> [Delivery] {
        zip(snapshot.grants, snapshot.pages).compactMap { grant, page in
            guard grant.channel != principal.member, !page.changes.isEmpty else { return nil }
            return Delivery(
                subject: grant.channel, recipient: principal.member, device: principal.device,
                scope: grant.projection?.rawValue ?? "owner", consent: grant.consent,
                records: Set(page.changes.map(\.record)).sorted())
        }
    }

    /// Where a chain without entries goes on from: its start once pruned to nothing, else
    /// the chain's beginning (PROTOCOL.md §9.16).
    static func emptyChainHead(of subject: MemberID, in store: some AccountingWrites) throws -> (sequence: Int64, hash: [UInt8]) {
        try store.chainStart(of: subject)?.link ?? (0, Disclosure.genesis)
    }

    /// Places each delivery at the end of its subject's chain and appends them all.
    static func record(_ deliveries: [Delivery], atMillis: Int64, in store: some AccountingWrites) throws -> [Disclosure] {
        var heads = try store.chainHeads(of: Set(deliveries.map(\.subject)))
        var entries: [Disclosure] = []
        for delivery in deliveries {
            let head = try heads[delivery.subject] ?? Self.emptyChainHead(of: delivery.subject, in: store)
            var entry = Disclosure(
                subject: delivery.subject, sequence: head.sequence + 1, atMillis: atMillis, recipient: delivery.recipient,
                device: delivery.device, scope: delivery.scope, consent: delivery.consent, records: delivery.records,
                previous: head.hash, hash: [])
            entry.hash = Disclosure.chainHash(previous: entry.previous, entry.canonicalBytes)
            heads[delivery.subject] = (entry.sequence, entry.hash)
            entries.append(entry)
        }
        try store.append(entries)
        return entries
    }
}

extension ServerAdministration {
    /// Where each subject's chain among `disclosures` first breaks, each checked from its
    /// start (`chainStarts`, for a pruned chain): what `tandem admin audit --verify` reports.
    /// Subjects whose chain holds are absent.
    public func brokenChains(_ disclosures: [Disclosure]) async throws -> [MemberID: Disclosure] {
        let starts = try await chainStarts()
        var chains: [MemberID: [Disclosure]] = [:]
        for entry in disclosures { chains[entry.subject, default: []].append(entry) }
        var broken: [MemberID: Disclosure] = [:]
        for (subject, chain) in chains {
            let start = starts[subject]?.link
            // Entries at or before the start were pruned since they were read (the server prunes
            // while this runs): the chain is checked from its start.
            let kept = chain.filter { $0.sequence > (start?.sequence ?? 0) }.sorted { $0.sequence < $1.sequence }
            if let entry = Disclosure.firstBreak(in: kept, from: start) { broken[subject] = entry }
        }
        return broken
    }

    /// Prunes the accounting to `retentionYears` before `nowMillis`: each chain's entries
    /// recorded earlier go, and the chain stays verifiable from the oldest entry kept.
    /// Returns how many entries went.
    /// - Throws: `ServerError.badRequest` for a retention under 3 years (Part 2's window).
    @discardableResult
    public func pruneAccounting(retentionYears: Int, nowMillis: Int64) async throws -> Int {
        guard (3...100).contains(retentionYears) else {
            throw ServerError.badRequest("The accounting's retention is 3 to 100 years (42 CFR Part 2 asks for at least 3).")
        }
        return try await pruneDisclosures(recordedBefore: nowMillis - Int64(retentionYears) * ChainStart.yearMillis)
    }
}

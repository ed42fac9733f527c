import Crypto
public import TandemCore

// The accounting of disclosures (issue 14; 42 CFR §2.24, HIPAA §164.528): every delivery
// of a member's records to anyone else is recorded before the page that carries them is
// sent, in a hash chain per member whose records they are. The rules are here, once;
// stores keep the entries through `AccountingWrites` and hand them out through
// `ServerAdministration.disclosures`.

/// One delivery of someone's records to another member: who received which records, on
/// which device, through which scope, under which consent, when; and its link in the
/// chain of the member whose records they are.
public struct Disclosure: Sendable, Equatable {
    /// Whose records: the patient whose journal was read, or the mentor whose note was.
    public var subject: MemberID
    /// Its place in the subject's chain: 1, 2, 3…
    public var sequence: Int64
    /// When the server recorded it, before sending the page (ms since 1970, server clock).
    public var atMillis: Int64
    public var recipient: MemberID
    /// The recipient's device (nil: a device-less caller).
    public var device: RecordID?
    /// The projection the records went through: `metrics`, `journal`, `shared-note`.
    public var scope: String
    /// The consent under which they went (nil: none needed, as for a note its author
    /// shared or a supervisor's read of a supervised mentor's notes).
    public var consent: RecordID?
    /// The records delivered, in id order; each at most once per entry.
    public var records: [RecordID]
    /// The previous entry's hash (32 zero bytes before the first).
    public var previous: [UInt8]
    /// SHA-256 of `previous` followed by the entry's canonical bytes.
    public var hash: [UInt8]

    public init(
        subject: MemberID, sequence: Int64, atMillis: Int64, recipient: MemberID, device: RecordID?, scope: String,
        consent: RecordID?, records: [RecordID], previous: [UInt8], hash: [UInt8]
    ) {
        self.subject = subject
        self.sequence = sequence
        self.atMillis = atMillis
        self.recipient = recipient
        self.device = device
        self.scope = scope
        self.consent = consent
        self.records = records
        self.previous = previous
        self.hash = hash
    }

    /// What the hash covers, in a fixed layout: a version tag, then every field (ids as
    /// 16 bytes, absent ids as 16 zero bytes, integers as 8 bytes big-endian, the scope
    /// and the record count length-prefixed).
    public var canonicalBytes: [UInt8] {
        var bytes = Array("tandem-disclosure-1".utf8)
        func integer(_ value: Int64) { for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> Int64(shift))) } }
        bytes += subject.bytes
        integer(sequence)
        integer(atMillis)
        bytes += recipient.bytes
        bytes += device?.bytes ?? Self.noID
        let scope = Array(self.scope.utf8)
        integer(Int64(scope.count))
        bytes += scope
        bytes += consent?.bytes ?? Self.noID
        integer(Int64(records.count))
        for record in records { bytes += record.bytes }
        return bytes
    }

    /// The hash of an entry with these fields after `previous`.
    static func chainHash(previous: [UInt8], _ canonicalBytes: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: canonicalBytes)
        return Array(hasher.finalize())
    }

    static let noID = [UInt8](repeating: 0, count: 16)
    /// The `previous` of a chain's first entry.
    public static let genesis = [UInt8](repeating: 0, count: 32)
}

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
/// it returns.
public protocol AccountingWrites {
    /// The last entry of each subject's chain among `subjects` (those with one).
    func chainHeads(of subjects: Set<MemberID>) throws -> [MemberID: (sequence: Int64, hash: [UInt8])]
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

    /// Places each delivery at the end of its subject's chain and appends them all.
    static func record(_ deliveries: [Delivery], atMillis: Int64, in store: some AccountingWrites) throws -> [Disclosure] {
        var heads = try store.chainHeads(of: Set(deliveries.map(\.subject)))
        var entries: [Disclosure] = []
        for delivery in deliveries {
            let head = heads[delivery.subject] ?? (0, Disclosure.genesis)
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

    /// The first entry of a subject's chain, in sequence order, that does not follow from
    /// the one before it (or, for the first kept, from its own `previous`): edited,
    /// removed, reordered or inserted. nil: the chain holds.
    static func firstBreak(in chain: [Disclosure]) -> Disclosure? {
        var expected: (sequence: Int64, hash: [UInt8])? = nil
        for entry in chain {
            if let expected, entry.sequence != expected.sequence + 1 || entry.previous != expected.hash { return entry }
            guard Disclosure.chainHash(previous: entry.previous, entry.canonicalBytes) == entry.hash else { return entry }
            expected = (entry.sequence, entry.hash)
        }
        return nil
    }
}

extension ServerAdministration {
    /// Where each subject's chain among `disclosures` first breaks (subjects whose chain
    /// holds are absent): what `tandem admin audit --verify` reports.
    public func brokenChains(_ disclosures: [Disclosure]) -> [MemberID: Disclosure] {
        var chains: [MemberID: [Disclosure]] = [:]
        for entry in disclosures { chains[entry.subject, default: []].append(entry) }
        var broken: [MemberID: Disclosure] = [:]
        for (subject, chain) in chains {
            if let entry = AccountingRules.firstBreak(in: chain.sorted { $0.sequence < $1.sequence }) { broken[subject] = entry }
        }
        return broken
    }
}

public import TandemCore

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
    /// 16 bytes, an optional id as a presence byte 0 or 1 and then its 16 bytes if
    /// present, integers as 8 bytes big-endian, the scope and the records length-prefixed).
    public var canonicalBytes: [UInt8] {
        var bytes = Array("tandem-disclosure-1".utf8)
        func integer(_ value: Int64) { for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> Int64(shift))) } }
        bytes += subject.bytes
        integer(sequence)
        integer(atMillis)
        bytes += recipient.bytes
        func optional(_ id: RecordID?) {
            bytes.append(id == nil ? 0 : 1)
            if let id { bytes += id.bytes }
        }
        optional(device)
        let scope = Array(self.scope.utf8)
        integer(Int64(scope.count))
        bytes += scope
        optional(consent)
        integer(Int64(records.count))
        for record in records { bytes += record.bytes }
        return bytes
    }

    /// The `previous` of a chain's first entry.
    public static let genesis = [UInt8](repeating: 0, count: 32)
}

/// The head of a member's chain of disclosures, as a pull answer carries it: the last
/// entry's sequence number and hash (hex). A device keeps every head it is shown, so that
/// an entry removed or rewritten later on the server no longer matches (PROTOCOL.md §9.16).
public struct AccountingHead: Codable, Sendable, Equatable {
    public var sequence: Int64
    public var hash: String

    public init(sequence: Int64, hash: String) {
        self.sequence = sequence
        self.hash = hash
    }
}

/// One entry of the caller's own chain, as `GET /v1/audit` answers it: the hashed fields,
/// and for display the recipient's name and role and their device's name (not hashed).
public struct DisclosureEntry: Codable, Sendable, Equatable {
    public var sequence: Int64
    public var at: Int64
    public var recipient: String
    public var recipientName: String?
    public var recipientRole: String?
    public var device: String?
    public var deviceName: String?
    public var scope: String
    public var consent: String?
    public var records: [String]
    public var previous: String
    public var hash: String
    /// For an entry of scope `emergency`: what §2.51 asks to be recorded (not hashed).
    public var emergency: EmergencyDetail?

    public init(
        _ entry: Disclosure, recipientName: String?, recipientRole: String?, deviceName: String?, emergency: EmergencyDetail? = nil
    ) {
        sequence = entry.sequence
        at = entry.atMillis
        recipient = entry.recipient.hex
        self.recipientName = recipientName
        self.recipientRole = recipientRole
        device = entry.device?.hex
        self.deviceName = deviceName
        scope = entry.scope
        consent = entry.consent?.hex
        records = entry.records.map(\.hex)
        previous = hexString(entry.previous)
        hash = hexString(entry.hash)
        self.emergency = emergency
    }

    /// The entry as its chain holds it, of `subject`'s chain; nil when a field is malformed.
    public func disclosure(of subject: MemberID) -> Disclosure? {
        guard let recipient = try? MemberID(hex: recipient), let previous = bytes(hex: previous), let hash = bytes(hex: hash),
              previous.count == 32, hash.count == 32, scope.utf8.count <= 64, records.count <= 100_000 else { return nil }
        var ids: [RecordID] = []
        for record in records {
            guard let id = try? RecordID(hex: record) else { return nil }
            ids.append(id)
        }
        var device: RecordID? = nil
        if let text = self.device {
            guard let id = try? RecordID(hex: text) else { return nil }
            device = id
        }
        var consent: RecordID? = nil
        if let text = self.consent {
            guard let id = try? RecordID(hex: text) else { return nil }
            consent = id
        }
        return Disclosure(
            subject: subject, sequence: sequence, atMillis: at, recipient: recipient, device: device, scope: scope, consent: consent,
            records: ids, previous: previous, hash: hash)
    }
}

/// Where a pruned chain starts now: its last pruned entry's sequence number, hash and time
/// (PROTOCOL.md §9.16). The first entry kept follows from it, so the chain stays verifiable
/// from the oldest entry kept; entries are pruned only once older than the retention period.
public struct ChainStart: Codable, Sendable, Equatable {
    public var sequence: Int64
    public var hash: String
    /// When the last pruned entry was recorded (ms since 1970, server clock).
    public var at: Int64

    public init(sequence: Int64, hash: String, at: Int64) {
        self.sequence = sequence
        self.hash = hash
        self.at = at
    }

    /// A year of retention, in ms: 366 days, so that N such years are never shorter than N
    /// calendar years.
    public static let yearMillis: Int64 = 366 * 86_400_000

    /// The shortest retention the accounting allows (42 CFR Part 2's window): 3 years, in
    /// ms. A chain that starts later than this before the server's time was cut short.
    public static let minimumRetentionMillis: Int64 = 3 * yearMillis

    /// The start as the link its chain goes on from (sequence, hash bytes); nil when it is
    /// malformed: a sequence out of range, or a hash that is not 32 bytes of hex.
    public var link: (sequence: Int64, hash: [UInt8])? {
        guard sequence >= 1, sequence < Int64.max / 2, let bytes = bytes(hex: hash), bytes.count == 32 else { return nil }
        return (sequence, bytes)
    }

    /// Whether pruning through this start keeps `minimumRetentionMillis` at `serverMillis`.
    public func isOldEnough(atServerMillis serverMillis: Int64) -> Bool {
        at <= serverMillis - Self.minimumRetentionMillis
    }
}

/// `GET /v1/audit?after=N`: the caller's own chain after entry N, in order.
public struct AuditResponse: Codable, Sendable {
    public var entries: [DisclosureEntry]
    /// More entries follow: ask again after the last one.
    public var more: Bool
    public var serverTime: UInt64
    /// Where the chain starts when it was pruned past entry N (the start's sequence is above
    /// N); nil otherwise.
    public var start: ChainStart?

    public init(entries: [DisclosureEntry], more: Bool, serverTime: UInt64, start: ChainStart? = nil) {
        self.entries = entries
        self.more = more
        self.serverTime = serverTime
        self.start = start
    }
}

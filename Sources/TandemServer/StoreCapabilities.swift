public import TandemCore
public import TandemProtocol

// What the sync rules need of a store, and all they may do to it: small capabilities a
// store implements over its own SQL, the way GRDB separates `DatabaseReader` from
// `DatabaseWriter`. The rules themselves (`PushRules`, `PullRules`) are written once,
// against these, so every store (the embedded SQLite one, PostgreSQL next) runs the same
// rules and holds nothing but SQL, transactions and its commit feed.
//
// Every call runs inside one transaction the store opened for the rules: a push's write
// transaction, or a pull's read snapshot.

/// A record the server holds: its number (the order records came in, which clusters the
/// held changes so that a new record's rows go at its end), owner and collection.
public struct StoredRecord: Sendable, Equatable {
    public var number: Int64
    public var owner: MemberID
    public var collection: CollectionName

    public init(number: Int64, owner: MemberID, collection: CollectionName) {
        self.number = number
        self.owner = owner
        self.collection = collection
    }
}

/// Reads a push's rules make, in the push's write transaction. They come in sets, not one
/// by one, so that a store across a network (PostgreSQL) answers a batch in a few round
/// trips whatever its size.
public protocol PushReads {
    /// The current epoch (hex).
    func epoch() throws -> String
    /// The highest change id the server accepted from each replica that has one.
    func marks(of replicas: Set<ReplicaID>) throws -> [ReplicaID: HybridTimestamp]
    /// The digest of the change the server accepted under each id it accepted one under.
    func acceptedDigests(of ids: Set<ChangeID>) throws -> [ChangeID: [UInt8]]
    /// The member whose device holds each replica, for devices not revoked.
    func activeMembers(of replicas: Set<ReplicaID>) throws -> [ReplicaID: MemberID]
    /// The epoch in which `device` may re-push (its open window, §9.9), if any.
    func repushEpoch(of device: RecordID) throws -> String?
    /// The role of each member among `members` that exists.
    func roles(of members: Set<MemberID>) throws -> [MemberID: Role]
    /// The patients assigned to a mentor.
    func patients(of mentor: MemberID) throws -> Set<MemberID>
    /// A patient's care team: their assigned mentors and those mentors' supervisors.
    func careTeam(of patient: MemberID) throws -> Set<MemberID>
    /// When the consent index says a consent was revoked (nil: not, or not indexed).
    func consentRevoked(_ id: RecordID) throws -> Int64?
    /// The records the server holds among `ids`.
    func records(_ ids: Set<RecordID>) throws -> [RecordID: StoredRecord]
    /// Every change the server holds of these records, any field.
    func heldChanges(of records: [StoredRecord]) throws -> [Change]
    /// The causal contexts the server keeps of these records' multi-value fields.
    func covered(of records: [RecordID]) throws -> [(record: RecordID, field: FieldName, context: CausalContext)]
    /// A channel's highest sequence number (0 when it holds nothing).
    func channelHead(_ channel: MemberID) throws -> Int64
    /// The bytes of the changes held in a member's channel (what the quota counts).
    func usage(of member: MemberID) throws -> Int64
    /// Told, before a batch's first read, the reads it begins with (each known from the
    /// batch alone). A store whose reads are round trips (PostgreSQL) asks them all at once
    /// and answers the matching calls that follow from what it got; the embedded store
    /// reads as it is asked (the default does nothing). The answers must be what the calls
    /// would read at that moment: the rules make them before they write anything.
    func readAhead(_ reads: PushReadAhead) throws
}

extension PushReads {
    public func readAhead(_ reads: PushReadAhead) throws {}
}

extension PullReads {
    public func held(in pages: [(channel: MemberID, after: Int64, limit: Int)]) throws -> [[HeldRow]] {
        try pages.map { try held(in: $0.channel, after: $0.after, limit: $0.limit) }
    }
}

/// The reads a push batch begins with (`PushReads.readAhead`): the marks of its replicas,
/// the records it names, the roles of the members its creates name, the epoch, and the
/// pushing member's channel head and quota usage.
public struct PushReadAhead: Sendable {
    public var marks: Set<ReplicaID>
    public var records: Set<RecordID>
    public var roles: Set<MemberID>
    public var channel: MemberID

    public init(marks: Set<ReplicaID>, records: Set<RecordID>, roles: Set<MemberID>, channel: MemberID) {
        self.marks = marks
        self.records = records
        self.roles = roles
        self.channel = channel
    }
}

/// Writes a push's rules make, in the same transaction as its reads.
public protocol PushWrites: PushReads {
    func insertRecord(_ id: RecordID, owner: MemberID, collection: CollectionName) throws -> StoredRecord
    /// Drops the held changes of one field (and merge kind) of a record.
    func deleteHeld(of record: StoredRecord, field: FieldName, kind: MergeKind) throws
    /// Drops every held change of a record but its create and tombstone.
    func deleteValues(of record: StoredRecord) throws
    func deleteCovered(of record: RecordID) throws
    func insertHeld(_ change: Change, of record: StoredRecord, field: FieldName, kind: MergeKind, sequence: Int64) throws
    func setCovered(_ context: CausalContext, of record: RecordID, field: FieldName) throws
    /// Moves channels' heads, and the commit feed's position once for all of them.
    func advance(_ heads: [MemberID: Int64]) throws
    func setUsage(_ bytes: Int64, of member: MemberID) throws
    func recordAccepted(_ id: ChangeID, digest: [UInt8]) throws
    func setMark(_ mark: HybridTimestamp, of replica: ReplicaID) throws
    /// Keeps the consent index (what `consents(to:)` reads) in step with a consent
    /// record's merged state; `deleteConsent` when the record is deleted.
    func setConsent(_ terms: ConsentTerms) throws
    func deleteConsent(_ id: RecordID) throws
    /// Keeps the note index (what `notesShared(with:)` reads) in step with a note's merged
    /// state; `deleteNote` when the note is deleted.
    func setNote(_ id: RecordID, author: MemberID, patient: MemberID, shared: Bool, writtenMillis: Int64) throws
    func deleteNote(_ id: RecordID) throws
    /// Keeps the index of journal numbers (what the center's statistics count) in step with
    /// a journal entry's merged state; `deleteJournalMetrics` when the entry is deleted.
    /// Keyed by the record's number (the order records came in), so a push's new entries go
    /// at the end of the index, as `held`'s do, instead of one random page each.
    func setJournalMetrics(_ metrics: JournalMetrics, of record: StoredRecord) throws
    func deleteJournalMetrics(of record: StoredRecord) throws
}

/// The terms of one consent, as the server indexes them for the sharing policy: who
/// granted it to whom, in which scope, until when, and since when it is revoked. The push
/// rules keep the index from each consent record's merged state (PROTOCOL.md §6.3), in the
/// push's own transaction, so a revoke is in force from its commit.
public struct ConsentTerms: Sendable, Equatable {
    public var id: RecordID
    public var patient: MemberID
    public var recipient: MemberID
    public var scope: ConsentScope
    public var expiresMillis: Int64?
    public var revokedMillis: Int64?

    public init(id: RecordID, patient: MemberID, recipient: MemberID, scope: ConsentScope, expiresMillis: Int64?, revokedMillis: Int64?) {
        self.id = id
        self.patient = patient
        self.recipient = recipient
        self.scope = scope
        self.expiresMillis = expiresMillis
        self.revokedMillis = revokedMillis
    }

    public init(_ consent: Consent) {
        self.init(
            id: consent.id, patient: consent.patient, recipient: consent.recipient, scope: consent.scope,
            expiresMillis: consent.expiresMillis, revokedMillis: consent.revokedMillis)
    }

    /// Whether the consent lets its recipient read at `nowMillis` (neither revoked nor
    /// expired at or before it).
    public func isActive(atMillis nowMillis: Int64) -> Bool {
        if let revokedMillis, revokedMillis <= nowMillis { return false }
        if let expiresMillis, expiresMillis <= nowMillis { return false }
        return true
    }
}

/// One held change as a pull reads it: its sequence number, its canonical bytes and its
/// record's collection (nil: the record is unknown, which a projection never carries).
public struct HeldRow: Sendable {
    public var sequence: Int64
    public var change: [UInt8]
    public var collection: CollectionName?

    public init(sequence: Int64, change: [UInt8], collection: CollectionName?) {
        self.sequence = sequence
        self.change = change
        self.collection = collection
    }
}

/// Reads a pull's rules make, all from one snapshot of the store.
public protocol PullReads {
    /// The principal a token names now.
    /// - Throws: `ServerError.unauthorized` or `.revoked`.
    func principal(tokenHash: [UInt8]) throws -> Principal
    func epoch() throws -> String
    /// A value the store changes in the same transaction as every change to what a sharing
    /// policy or the directory reads (consents, notes, assignments, members), by trigger,
    /// whatever code writes them. Random, never counted: a restored store shows the value
    /// it had with the state it restores, never an old value with another state.
    func sharingVersion() throws -> [UInt8]
    /// The highest sequence number of each channel among `channels` that holds anything
    /// (a channel left out holds nothing: its head is 0). One read for all of a mentor's
    /// patients.
    func channelHeads(of channels: Set<MemberID>) throws -> [MemberID: Int64]
    /// At most `limit` held changes of a channel after `sequence`, in sequence order.
    func held(in channel: MemberID, after sequence: Int64, limit: Int) throws -> [HeldRow]
    /// `held(in:after:limit:)` for several channels at once, each with its own limit,
    /// answer for answer in the order asked: a mentor's first pull reads a page of many
    /// patients' channels, which a store across a network (PostgreSQL) answers in one
    /// round trip instead of one each.
    func held(in pages: [(channel: MemberID, after: Int64, limit: Int)]) throws -> [[HeldRow]]
    func mark(of replica: ReplicaID) throws -> HybridTimestamp?
    func repushEpoch(of device: RecordID) throws -> String?
    /// Every consent granted to `recipient`, active or not.
    func consents(to recipient: MemberID) throws -> [ConsentTerms]
    /// The patients in whose care team `member` is: a mentor's assigned patients, a
    /// supervisor's mentors' patients.
    func carePatients(of member: MemberID) throws -> Set<MemberID>
    /// A patient's care team: their assigned mentors and those mentors' supervisors.
    func careTeam(of patient: MemberID) throws -> Set<MemberID>
    /// The members assigned to `carer` as `kind` says: a mentor's patients, a supervisor's mentors.
    func assigned(_ kind: Assignment.Kind, to carer: MemberID) throws -> Set<MemberID>
    /// The carers of `member` of one kind: a patient's mentors, a mentor's supervisors.
    func carers(_ kind: Assignment.Kind, of member: MemberID) throws -> Set<MemberID>
    /// The name and role of each member among `members` that exists.
    func names(of members: Set<MemberID>) throws -> [MemberID: (name: String, role: Role)]
    /// The notes shared with a patient now, each with its author.
    func notesShared(with patient: MemberID) throws -> [(note: RecordID, author: MemberID)]
    /// At most `limit` held changes of one record of a channel after `sequence`, in
    /// sequence order (a subscription to one shared note).
    func held(of record: RecordID, in channel: MemberID, after sequence: Int64, limit: Int) throws -> [HeldRow]
    /// The highest sequence number among one record's held changes (0: none).
    func recordHead(_ record: RecordID) throws -> Int64
    /// The last entry of a member's chain of disclosures (nil: none, yet or since pruning).
    func accountingHead(of subject: MemberID) throws -> (sequence: Int64, hash: [UInt8])?
    /// Where a member's chain starts once pruned (nil: never pruned).
    func chainStart(of subject: MemberID) throws -> ChainStart?
    /// At most `limit` entries of a member's chain after `sequence`, in order.
    func disclosures(of subject: MemberID, after sequence: Int64, limit: Int) throws -> [Disclosure]
    /// When each member among `members` that exists was added to the center (ms since
    /// 1970): a patient's enrollment, which the center's statistics count weeks from.
    func enrolledMillis(of members: Set<MemberID>) throws -> [MemberID: Int64]
    /// The numbers of every live journal entry of each patient among `patients`, by
    /// patient and day (the center's statistics, `Outcomes`; never text or tags).
    func countedEntries(of patients: Set<MemberID>) throws -> [JournalMetrics]
    /// The day each live note about a patient among `patients` was written (UTC).
    func noteDays(about patients: Set<MemberID>) throws -> [(patient: MemberID, day: Int)]
    /// Every time a patient among `patients` was, or is, in a mentor's caseload.
    func caseloadSpans(of patients: Set<MemberID>) throws -> [CaseloadSpan]
    /// Every mentor of the center, by id, with their name.
    func mentors() throws -> [MemberID: String]
    /// Every emergency access granted to a staff member, active or not.
    func emergencyAccesses(staff: MemberID) throws -> [EmergencyAccess]
    /// The emergency accesses among `ids` that exist.
    func emergencyAccesses(ids: Set<RecordID>) throws -> [RecordID: EmergencyAccess]
    /// The name of each device among `devices` that exists.
    func deviceNames(of devices: Set<RecordID>) throws -> [RecordID: String]
}

public import TandemCore

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
    func channelHead(_ channel: MemberID) throws -> Int64
    /// At most `limit` held changes of a channel after `sequence`, in sequence order.
    func held(in channel: MemberID, after sequence: Int64, limit: Int) throws -> [HeldRow]
    func mark(of replica: ReplicaID) throws -> HybridTimestamp?
    func repushEpoch(of device: RecordID) throws -> String?
}

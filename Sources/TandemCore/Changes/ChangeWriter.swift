/// Stamps new changes for one replica, validating each against its collection's table
/// before any is stamped, so an edit is written whole or not at all.
///
/// ```swift
/// var writer = ChangeWriter(replica: me, clock: HybridClock(floor: persisted))
/// var edit = RecordEdit(collection: .journal)
/// edit.set("mood", .int(6))
/// let changes = try writer.write(edit, to: RecordID.random(), current: nil, wallMillis: now)
/// ```
public struct ChangeWriter: Sendable {
    public let replica: ReplicaID
    public var clock: HybridClock

    public init(replica: ReplicaID, clock: HybridClock = HybridClock()) {
        self.replica = replica
        self.clock = clock
    }

    /// Turns an edit into stamped changes: the create first when `current` has none, then
    /// the fields in the edit's order. Text changes carry the context that supersedes every
    /// value `current` holds for that field.
    ///
    /// - Throws: `TandemCoreError` for any value that breaks its rule; nothing is stamped then.
    public mutating func write(
        _ edit: RecordEdit, to record: RecordID, current: RecordState?, wallMillis: UInt64
    ) throws(TandemCoreError) -> [Change] {
        guard !Schema.serverAuthoritative.contains(edit.collection) else {
            throw .invalidChange(reason: "\(edit.collection) records are the server's; devices hold read-only copies")
        }
        let placeholder = ChangeID(timestamp: clock.floor, replica: replica)
        var drafts: [Change] = []
        let needsCreate = current?.create == nil
        if current?.isDeleted == true, !edit.deletes {
            throw .invalidChange(reason: "the record was deleted; deleted records cannot be edited")
        }
        if needsCreate && !edit.deletes {
            var map = edit.createFields
            map[CreateKey.collection] = .string(edit.collection.rawValue)
            drafts.append(Change(id: placeholder, record: record, kind: .create, value: .map(map)))
        } else if !edit.createFields.isEmpty {
            throw .invalidChange(reason: "set-once fields are set only when a record is created")
        }
        if edit.deletes {
            drafts.append(Change(id: placeholder, record: record, kind: .tombstone))
        }
        for item in edit.items {
            var change = Change(id: placeholder, record: record, field: item.field, kind: item.kind, value: item.value)
            if item.kind == .mv { change.context = current?.register(item.field)?.resolvingContext ?? CausalContext() }
            drafts.append(change)
        }
        for draft in drafts {
            var check = draft
            check.context = CausalContext()  // the placeholder id may sit inside the context
            try Schema.validate(check, in: edit.collection)
        }
        var stamped: [Change] = []
        stamped.reserveCapacity(drafts.count)
        for var draft in drafts {
            draft.id = ChangeID(timestamp: try clock.next(wallMillis: wallMillis), replica: replica)
            stamped.append(draft)
        }
        return stamped
    }

    /// Raises the clock past changes received from others (PROTOCOL.md §5.2).
    public mutating func observe(_ changes: some Sequence<Change>) {
        for change in changes { clock.observe(change.timestamp) }
    }
}

/// What one edit of one record sets: field values in order, set-once create fields, or a
/// deletion. Typed edits (`JournalEdit`, `NoteEdit`, `ConsentEdit`) build one.
public struct RecordEdit: Sendable {
    public struct Item: Sendable {
        public var field: FieldName
        public var kind: MergeKind
        public var value: Value
    }

    public let collection: CollectionName
    public private(set) var items: [Item] = []
    public var createFields: [String: Value] = [:]
    public var deletes = false

    public init(collection: CollectionName) { self.collection = collection }

    public mutating func set(_ field: FieldName, _ value: Value) { items.append(Item(field: field, kind: .lww, value: value)) }
    public mutating func text(_ field: FieldName, _ text: String) { items.append(Item(field: field, kind: .mv, value: .string(text))) }
    public mutating func lower(_ field: FieldName, _ value: Value) { items.append(Item(field: field, kind: .min, value: value)) }

    /// A deletion: a tombstone, which no later edit undoes.
    public static func delete(_ collection: CollectionName) -> RecordEdit {
        var edit = RecordEdit(collection: collection)
        edit.deletes = true
        return edit
    }

    public var isEmpty: Bool { items.isEmpty && createFields.isEmpty && !deletes }
}

/// The merged state of one record (PROTOCOL.md §5).
///
/// Holds the winning create, the tombstone if any, and each field's state. Once a record
/// has a tombstone its field values are purged and later edits are ignored; the create
/// and the tombstone stay as metadata.
public struct RecordState: Hashable, Sendable {
    public let id: RecordID
    /// The winning create: lowest change id.
    public private(set) var create: Change?
    /// The lowest tombstone, if the record was deleted.
    public private(set) var tombstone: Change?
    public private(set) var fields: [FieldKey: FieldState]

    public init(id: RecordID) {
        self.id = id
        self.fields = [:]
    }

    public var isDeleted: Bool { tombstone != nil }

    /// The collection named by the winning create, if it has arrived.
    public var collection: CollectionName? {
        guard case .string(let name)? = create?.value.mapValue?[CreateKey.collection] else { return nil }
        return CollectionName(name)
    }

    /// The set-once fields of the winning create.
    public var createFields: [String: Value] { create?.value.mapValue ?? [:] }

    /// The replica that created the record; its owner is the member it is registered to.
    public var creator: ReplicaID? { create?.replica }

    /// The current value of an `lww` or `min` field.
    public func value(_ field: FieldName, kind: MergeKind = .lww) -> Value? {
        guard case .winner(let change)? = fields[FieldKey(field, kind)] else { return nil }
        return change.value
    }

    /// The register of an `mv` field.
    public func register(_ field: FieldName) -> MultiValue? {
        guard case .multiValue(let register)? = fields[FieldKey(field, .mv)] else { return nil }
        return register
    }

    /// Every change this state holds: what a new reader of the record is sent.
    public var heldChanges: [Change] {
        var result: [Change] = []
        if let create { result.append(create) }
        if let tombstone { result.append(tombstone) }
        for key in fields.keys.sorted() { result.append(contentsOf: fields[key]?.changes ?? []) }
        return result
    }

    /// Merges one change into the record; returns whether the state changed.
    mutating func apply(_ change: Change, rules: MergeRules) -> Bool {
        switch change.kind {
        case .create:
            guard let current = create else { create = change; return true }
            guard rules.lowestReplaces(current, with: change, byValue: false) else { return false }
            create = change
            return true
        case .tombstone:
            if let current = tombstone {
                guard rules.lowestReplaces(current, with: change, byValue: false) else { return false }
            }
            tombstone = change
            fields.removeAll()
            return true
        case .lww, .min:
            guard tombstone == nil else { return false }
            let key = FieldKey(change.field, change.kind)
            guard case .winner(let current)? = fields[key] else {
                fields[key] = .winner(change)
                return true
            }
            let replaces = change.kind == .lww
                ? rules.lwwReplaces(current, with: change)
                : rules.lowestReplaces(current, with: change, byValue: true)
            guard replaces else { return false }
            fields[key] = .winner(change)
            return true
        case .mv:
            guard tombstone == nil else { return false }
            let key = FieldKey(change.field, .mv)
            var register: MultiValue
            if case .multiValue(let existing)? = fields[key] { register = existing } else { register = MultiValue() }
            guard register.apply(change) else { return false }
            fields[key] = .multiValue(register)
            return true
        }
    }

    /// Merges another replica's state of the same record; returns whether this changed.
    mutating func merge(_ other: RecordState, rules: MergeRules) -> Bool {
        var changed = false
        if let create = other.create, apply(create, rules: rules) { changed = true }
        if let tombstone = other.tombstone, apply(tombstone, rules: rules) { changed = true }
        guard tombstone == nil else { return changed }
        for (key, state) in other.fields {
            switch state {
            case .winner(let change):
                if apply(change, rules: rules) { changed = true }
            case .multiValue(let theirs):
                var register: MultiValue
                if case .multiValue(let existing)? = fields[key] { register = existing } else { register = MultiValue() }
                if register.merge(theirs) {
                    fields[key] = .multiValue(register)
                    changed = true
                }
            }
        }
        return changed
    }

    mutating func joinCovered(_ context: CausalContext, for key: FieldKey) {
        guard tombstone == nil, !context.isEmpty else { return }
        var register: MultiValue
        if case .multiValue(let existing)? = fields[key] { register = existing } else { register = MultiValue() }
        if register.joinCovered(context) { fields[key] = .multiValue(register) }
    }
}

/// Every record a replica holds, merged: the in-memory model of a store.
///
/// ```swift
/// var state = ReplicaState()
/// for change in batch.changes { state.apply(change) }
/// state.canonicalDump() == other.canonicalDump() // after both saw the same changes
/// ```
///
/// Applying is idempotent, commutative and associative: replicas that have seen the same
/// set of changes, in any order and with any duplication, hold identical states.
public struct ReplicaState: Hashable, Sendable {
    public internal(set) var records: [RecordID: RecordState]
    let rules: MergeRules

    public init() { self.init(rules: .standard) }

    init(rules: MergeRules) {
        self.records = [:]
        self.rules = rules
    }

    public subscript(id: RecordID) -> RecordState? { records[id] }

    /// Room for `count` records, so a page's records do not regrow the table as they come.
    public mutating func reserveCapacity(_ count: Int) { records.reserveCapacity(count) }

    /// Merges one change; returns whether any state changed (a server gives the field a
    /// new sequence number exactly then).
    @discardableResult
    public mutating func apply(_ change: Change) -> Bool {
        // A held record is changed in place: copied out, its fields would be copied too,
        // at every change.
        if let index = records.index(forKey: change.record) {
            return records.values[index].apply(change, rules: rules)
        }
        var record = RecordState(id: change.record)
        guard record.apply(change, rules: rules) else { return false }
        records[change.record] = record
        return true
    }

    /// Merges every change in order; returns how many changed the state.
    @discardableResult
    public mutating func apply(_ changes: some Sequence<Change>) -> Int {
        var count = 0
        for change in changes where apply(change) { count += 1 }
        return count
    }

    /// Merges another replica's whole state into this one.
    @discardableResult
    public mutating func merge(_ other: ReplicaState) -> Bool {
        var changed = false
        for (id, theirs) in other.records {
            var record = records[id] ?? RecordState(id: id)
            if record.merge(theirs, rules: rules) {
                records[id] = record
                changed = true
            }
        }
        return changed
    }

    /// Every change held, record by record in id order.
    public var heldChanges: [Change] {
        records.keys.sorted().flatMap { records[$0]?.heldChanges ?? [] }
    }

    /// The same state with `replica`'s timestamps replaced through `mapping`, in ids and in
    /// contexts: the local half of re-stamping (PROTOCOL.md §5.3).
    public func rewriting(replica: ReplicaID, _ mapping: [HybridTimestamp: HybridTimestamp]) -> ReplicaState {
        guard !mapping.isEmpty else { return self }
        func rewrite(_ change: Change) -> Change {
            var result = change
            if change.replica == replica, let new = mapping[change.timestamp] { result.id.timestamp = new }
            result.context = change.context.rewriting(replica: replica, mapping)
            return result
        }
        var result = ReplicaState(rules: rules)
        for (id, record) in records {
            var rebuilt = RecordState(id: id)
            for change in record.heldChanges { _ = rebuilt.apply(rewrite(change), rules: rules) }
            for (key, state) in record.fields {
                // Carry the covered context over, so superseded values stay superseded.
                if case .multiValue(let register) = state {
                    rebuilt.joinCovered(register.covered.rewriting(replica: replica, mapping), for: key)
                }
            }
            result.records[id] = rebuilt
        }
        return result
    }
}


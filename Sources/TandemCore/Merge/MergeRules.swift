/// The orders the merge rules use (PROTOCOL.md §5.1), in one place.
///
/// Production code always uses `.standard`. Tests build a `ReplicaState` with a broken
/// rule through `@testable import` to prove the convergence test can fail; no flag of a
/// shipped binary reaches this.
struct MergeRules: Sendable, Hashable {
    /// Mutation for tests only: compares replica ids backwards in the last tie-break.
    var reverseReplicaTieBreak = false

    static let standard = MergeRules()

    /// Change id order: wall ms, then counter, then replica id bytes.
    func precedes(_ a: ChangeID, _ b: ChangeID) -> Bool {
        if a.timestamp != b.timestamp { return a.timestamp < b.timestamp }
        return reverseReplicaTieBreak ? b.replica < a.replica : a.replica < b.replica
    }

    /// `lww`: whether `candidate` replaces `current`. The later id wins; the same id twice
    /// (only a faulty replica does that) is settled by the greater canonical bytes.
    func lwwReplaces(_ current: Change, with candidate: Change) -> Bool {
        if candidate.id != current.id { return precedes(current.id, candidate.id) }
        return current.canonicalBytes.lexicographicallyPrecedes(candidate.canonicalBytes)
    }

    /// `min`, `create` and `tombstone`: whether `candidate` replaces `current`. For `min` the
    /// lower value wins first (`Value.minOrder`); then the lower id; then the lower bytes.
    func lowestReplaces(_ current: Change, with candidate: Change, byValue: Bool) -> Bool {
        if byValue {
            let order = Value.minOrder(candidate.value, current.value)
            if order != 0 { return order < 0 }
        }
        if candidate.id != current.id { return precedes(candidate.id, current.id) }
        return candidate.canonicalBytes.lexicographicallyPrecedes(current.canonicalBytes)
    }
}

extension Value {
    /// The total order of `min` fields: by type tag first, integers by number, every other
    /// type by its canonical bytes. Returns −1, 0 or 1.
    public static func minOrder(_ a: Value, _ b: Value) -> Int {
        if a.tag != b.tag { return a.tag < b.tag ? -1 : 1 }
        if case .int(let x) = a, case .int(let y) = b { return x < y ? -1 : (x == y ? 0 : 1) }
        var wa = ByteWriter()
        var wb = ByteWriter()
        a.encode(into: &wa)
        b.encode(into: &wb)
        if wa.bytes == wb.bytes { return 0 }
        return wa.bytes.lexicographicallyPrecedes(wb.bytes) ? -1 : 1
    }
}

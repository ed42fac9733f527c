/// Identifies a field's state in a record: its name and merge kind.
///
/// The kind is part of the key, so two replicas that (wrongly) disagree on a field's kind
/// still converge: each kind merges on its own.
public struct FieldKey: Hashable, Comparable, Sendable {
    public var field: FieldName
    public var kind: MergeKind

    public init(_ field: FieldName, _ kind: MergeKind) {
        self.field = field
        self.kind = kind
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        lhs.field != rhs.field ? lhs.field < rhs.field : lhs.kind < rhs.kind
    }
}

/// The merged state of one field.
public enum FieldState: Hashable, Sendable {
    /// `lww` and `min`: the winning change.
    case winner(Change)
    /// `mv`: the values not superseded, and the join of every context received.
    case multiValue(MultiValue)

    /// The changes held for this field.
    public var changes: [Change] {
        switch self {
        case .winner(let change): [change]
        case .multiValue(let register): register.frontier
        }
    }
}

/// A multi-value register (PROTOCOL.md §5.5).
///
/// `frontier` holds every received value that no received context covers, ordered by
/// change id; `covered` is the join of every received context, so a superseded value
/// that arrives late is recognised and never comes back.
public struct MultiValue: Hashable, Sendable {
    public private(set) var frontier: [Change]
    public private(set) var covered: CausalContext

    public init() {
        frontier = []
        covered = CausalContext()
    }

    /// More than one value: a conflict to show to the person.
    public var isConflict: Bool { frontier.count > 1 }

    /// The context a new value must carry to supersede everything held:
    /// what was covered, plus every frontier value's id.
    public var resolvingContext: CausalContext {
        var context = covered
        for change in frontier { context.include(change.id) }
        return context
    }

    /// Merges one change; returns whether anything changed.
    mutating func apply(_ change: Change) -> Bool {
        let newCovered = covered.joined(with: change.context)
        var candidates = frontier
        if !newCovered.covers(change.id) {
            let bytes = change.canonicalBytes
            if !candidates.contains(where: { $0.id == change.id && $0.canonicalBytes == bytes }) {
                candidates.append(change)
            }
        }
        candidates.removeAll { newCovered.covers($0.id) }
        candidates.sort { a, b in
            a.id != b.id ? a.id < b.id : a.canonicalBytes.lexicographicallyPrecedes(b.canonicalBytes)
        }
        let changed = newCovered != covered || candidates != frontier
        covered = newCovered
        frontier = candidates
        return changed
    }

    /// Merges another replica's register of the same field.
    mutating func merge(_ other: MultiValue) -> Bool {
        // Join the contexts first, so values the other side saw superseded are dropped here too.
        var changed = joinCovered(other.covered)
        for change in other.frontier where apply(change) { changed = true }
        return changed
    }

    /// Joins a context into `covered`, dropping the values it supersedes.
    mutating func joinCovered(_ context: CausalContext) -> Bool {
        let joined = covered.joined(with: context)
        guard joined != covered else { return false }
        covered = joined
        frontier.removeAll { joined.covers($0.id) }
        return true
    }
}

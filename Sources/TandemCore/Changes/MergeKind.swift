/// How a change merges with others for the same field (PROTOCOL.md §5).
///
/// The kind travels with every change, so a replica that does not know a field still
/// merges it correctly and keeps its value as opaque bytes.
public enum MergeKind: UInt8, Hashable, Comparable, Sendable, CaseIterable, CustomStringConvertible {
    /// The record's first change: its collection and set-once fields. Lowest id wins.
    case create = 0
    /// Last writer wins by change id.
    case lww = 1
    /// Multi-value register: every value not superseded by a causal context is kept.
    case mv = 2
    /// The lowest value wins (a consent's revocation time).
    case min = 3
    /// Deletes the record: beats every edit, no undelete.
    case tombstone = 4

    public var description: String {
        switch self {
        case .create: "create"
        case .lww: "lww"
        case .mv: "mv"
        case .min: "min"
        case .tombstone: "tombstone"
        }
    }

    public init?(name: String) {
        guard let kind = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = kind
    }

    /// Whether changes of this kind name a field; create and tombstone speak for the record.
    public var hasField: Bool { self == .lww || self == .mv || self == .min }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

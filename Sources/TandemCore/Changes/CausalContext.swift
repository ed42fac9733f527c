/// What a text change had seen of its field: per replica, the highest change id of that
/// field it held (PROTOCOL.md §5.5).
///
/// A value with id `(t, r)` is superseded by a change whose context holds `r ↦ t'` with
/// `t' ≥ t`. Entries are kept sorted by replica id, one per replica.
public struct CausalContext: Hashable, Sendable, CustomStringConvertible {
    public static let maxEntries = 4096

    public private(set) var entries: [Entry]

    public struct Entry: Hashable, Sendable {
        public var replica: ReplicaID
        public var timestamp: HybridTimestamp
        public init(replica: ReplicaID, timestamp: HybridTimestamp) {
            self.replica = replica
            self.timestamp = timestamp
        }
    }

    public init() { entries = [] }

    /// Builds a context from any entries: for each replica the highest timestamp counts.
    public init(_ entries: some Sequence<Entry>) {
        self.init()
        for entry in entries { include(entry.replica, entry.timestamp) }
    }

    init(sortedUnique entries: [Entry]) { self.entries = entries }

    public var isEmpty: Bool { entries.isEmpty }

    /// The highest timestamp seen from `replica`.
    public subscript(replica: ReplicaID) -> HybridTimestamp? {
        guard let index = position(of: replica) else { return nil }
        return entries[index].timestamp
    }

    /// Whether this context has seen `id`, and so supersedes the value it wrote.
    public func covers(_ id: ChangeID) -> Bool {
        guard let seen = self[id.replica] else { return false }
        return seen >= id.timestamp
    }

    /// Adds a change id: the entry for its replica rises to it if lower.
    public mutating func include(_ id: ChangeID) { include(id.replica, id.timestamp) }

    public mutating func include(_ replica: ReplicaID, _ timestamp: HybridTimestamp) {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].replica < replica { low = mid + 1 } else { high = mid }
        }
        if low < entries.count, entries[low].replica == replica {
            if entries[low].timestamp < timestamp { entries[low].timestamp = timestamp }
        } else {
            entries.insert(Entry(replica: replica, timestamp: timestamp), at: low)
        }
    }

    /// The pointwise maximum of two contexts.
    public func joined(with other: CausalContext) -> CausalContext {
        var result = self
        for entry in other.entries { result.include(entry.replica, entry.timestamp) }
        return result
    }

    /// Replaces the timestamps of `replica` through `mapping` (re-stamping, PROTOCOL.md §5.3).
    public func rewriting(replica: ReplicaID, _ mapping: [HybridTimestamp: HybridTimestamp]) -> CausalContext {
        guard let index = position(of: replica), let new = mapping[entries[index].timestamp] else { return self }
        var result = self
        result.entries[index].timestamp = new
        return result
    }

    private func position(of replica: ReplicaID) -> Int? {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].replica < replica { low = mid + 1 } else { high = mid }
        }
        return low < entries.count && entries[low].replica == replica ? low : nil
    }

    public var description: String {
        "{" + entries.map { "\($0.replica.hex)=\($0.timestamp)" }.joined(separator: ",") + "}"
    }
}

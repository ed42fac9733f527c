/// A point on the hybrid logical clock: wall milliseconds since 1970 UTC and a counter.
///
/// Timestamps order by `wallMillis`, then `counter` (PROTOCOL.md §5.1).
public struct HybridTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The largest wall time a timestamp may carry: 2^48 − 1 ms, in the year 10889.
    public static let maxWallMillis: UInt64 = (1 << 48) - 1

    public static let zero = HybridTimestamp(wallMillis: 0, counter: 0)

    public var wallMillis: UInt64
    public var counter: UInt16

    public init(wallMillis: UInt64, counter: UInt16 = 0) {
        self.wallMillis = wallMillis
        self.counter = counter
    }

    /// The next timestamp after this one: the counter goes up, and an overflowing
    /// counter borrows a millisecond.
    ///
    /// - Throws: `TandemCoreError.clockExhausted` past `maxWallMillis`.
    public func successor() throws(TandemCoreError) -> HybridTimestamp {
        if counter < .max { return HybridTimestamp(wallMillis: wallMillis, counter: counter + 1) }
        guard wallMillis < Self.maxWallMillis else { throw .clockExhausted }
        return HybridTimestamp(wallMillis: wallMillis + 1, counter: 0)
    }

    /// `wall.counter`, as the readable fixtures write it.
    public var description: String { "\(wallMillis).\(counter)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.wallMillis, lhs.counter) < (rhs.wallMillis, rhs.counter)
    }
}

/// The id of a change: the timestamp it was stamped with and the replica that stamped it.
///
/// Change ids are totally ordered by `(wall ms, counter, replica id bytes)`; this is
/// the `lww` order of PROTOCOL.md §5.1.
public struct ChangeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var timestamp: HybridTimestamp
    public var replica: ReplicaID

    public init(timestamp: HybridTimestamp, replica: ReplicaID) {
        self.timestamp = timestamp
        self.replica = replica
    }

    public var description: String { "\(timestamp)@\(replica.hex)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        if lhs.timestamp != rhs.timestamp { return lhs.timestamp < rhs.timestamp }
        return lhs.replica < rhs.replica
    }
}

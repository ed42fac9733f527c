/// A source of wall time in milliseconds since 1970 UTC; injected so tests control time.
public protocol WallClock: Sendable {
    func nowMillis() -> UInt64
}

/// A wall clock that always says the same time, or whatever a test sets.
public struct FixedWallClock: WallClock {
    public var millis: UInt64
    public init(millis: UInt64) { self.millis = millis }
    public func nowMillis() -> UInt64 { millis }
}

/// A replica's hybrid logical clock (PROTOCOL.md §5.2).
///
/// ```swift
/// var clock = HybridClock(floor: persistedLast, offsetMillis: serverOffset)
/// let stamp = try clock.next(wallMillis: wall.nowMillis())
/// ```
///
/// Every stamp is strictly greater than the floor and than every earlier stamp, whatever
/// the wall clock does: persist `floor` and hand it back after a restart. The wall time is
/// corrected by `offsetMillis`, the server's time minus the device's as last measured.
public struct HybridClock: Sendable, Equatable {
    /// The last timestamp issued or observed; the next stamp is above it.
    public private(set) var floor: HybridTimestamp
    /// Server time minus device time, in milliseconds.
    public var offsetMillis: Int64

    public init(floor: HybridTimestamp = .zero, offsetMillis: Int64 = 0) {
        self.floor = floor
        self.offsetMillis = offsetMillis
    }

    /// Stamps a new change.
    ///
    /// - Throws: `TandemCoreError.clockExhausted` when no later timestamp exists.
    public mutating func next(wallMillis: UInt64) throws(TandemCoreError) -> HybridTimestamp {
        let corrected = Int64(clamping: wallMillis) &+ offsetMillis
        let physical = UInt64(clamping: max(0, min(corrected, Int64(HybridTimestamp.maxWallMillis))))
        let stamp: HybridTimestamp
        if physical > floor.wallMillis {
            stamp = HybridTimestamp(wallMillis: physical, counter: 0)
        } else {
            stamp = try floor.successor()
        }
        floor = stamp
        return stamp
    }

    /// Stamps a new change with the time of `wall`.
    public mutating func next(using wall: some WallClock) throws(TandemCoreError) -> HybridTimestamp {
        try next(wallMillis: wall.nowMillis())
    }

    /// Raises the floor to a timestamp seen in a received change, so that an edit made
    /// after seeing another is ordered after it.
    public mutating func observe(_ timestamp: HybridTimestamp) {
        if timestamp > floor { floor = timestamp }
    }

    /// Lowers the floor to the server's mark after a skew refusal (PROTOCOL.md §5.3).
    /// Only `Restamper` should need this.
    public mutating func lowerFloor(to mark: HybridTimestamp) {
        floor = mark
    }
}

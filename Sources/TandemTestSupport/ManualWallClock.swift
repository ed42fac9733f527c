public import TandemCore

/// A wall clock a test moves by hand: time passes only when the test says so, however
/// slowly the machine runs (the suite also runs under ThreadSanitizer, where one request
/// has been seen to take over 10 s).
public final class ManualWallClock: WallClock {
    private let millis: Locked<UInt64>

    public init(millis: UInt64) { self.millis = Locked(millis) }

    public func nowMillis() -> UInt64 { millis.withLock { $0 } }

    public func advance(byMillis delta: UInt64) { millis.withLock { $0 += delta } }

    /// Sets the clock, back as well as on (a host's clock corrected).
    public func set(millis value: UInt64) { millis.withLock { $0 = value } }
}

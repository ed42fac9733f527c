public import Foundation

/// A value behind a lock, for tests. NSLock rather than Synchronization's Mutex:
/// ThreadSanitizer sees pthread locks, not the futex under Mutex, and the suite also runs
/// under TSan.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

import Foundation
import Synchronization

/// Tells when anything in a directory is written, through Linux inotify: `tandem sync
/// --watch` learns of writes other commands make to the same home without polling.
final class DirectoryWatcher: Sendable {
    private let descriptor: Int32
    private final class Flag: Sendable {
        let raised = Atomic(false)
    }
    private let stopped = Flag()

    /// Events are coalesced: a burst of writes is one element.
    let changes: AsyncStream<Void>

    init(directory: String) throws {
        let fd = inotify_init1(Int32(IN_CLOEXEC) | Int32(IN_NONBLOCK))
        guard fd >= 0 else { throw WatchError.inotify(errno) }
        let mask = UInt32(IN_MODIFY) | UInt32(IN_CLOSE_WRITE) | UInt32(IN_CREATE) | UInt32(IN_MOVED_TO)
        guard inotify_add_watch(fd, directory, mask) >= 0 else {
            let code = errno
            close(fd)
            throw WatchError.inotify(code)
        }
        descriptor = fd
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        changes = stream
        let stopped = self.stopped
        continuation.onTermination = { _ in stopped.raised.store(true, ordering: .relaxed) }
        // A thread of its own blocks in poll(2), waking every 200 ms to notice a stop.
        let thread = Thread { [descriptor = fd] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            while !stopped.raised.load(ordering: .relaxed) {
                poller.revents = 0
                guard poll(&poller, 1, 200) > 0 else { continue }
                while read(descriptor, &buffer, buffer.count) > 0 {}
                continuation.yield()
            }
            continuation.finish()
            close(descriptor)
        }
        thread.name = "tandem-inotify"
        thread.start()
    }

    func stop() { stopped.raised.store(true, ordering: .relaxed) }

    deinit { stop() }

    enum WatchError: Error, CustomStringConvertible {
        case inotify(Int32)
        var description: String {
            switch self {
            case .inotify(let code): "Cannot watch the home for writes (inotify: \(String(cString: strerror(code))))."
            }
        }
    }
}

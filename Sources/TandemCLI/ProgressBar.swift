import Foundation
import Synchronization
import TandemClient

/// A one-line progress display for long syncs, on standard error, only on a terminal:
/// drawn from 0.3 s into a sync, at most ten times a second, erased when the sync ends.
final class ProgressBar: Sendable {
    private struct State {
        var started = ContinuousClock.now
        var lastDrawn: ContinuousClock.Instant? = nil
    }
    private let state = Mutex(State())
    let enabled: Bool

    init(enabled: Bool = isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb") {
        self.enabled = enabled
    }

    func update(_ progress: Syncer.Progress) {
        guard enabled else { return }
        let now = ContinuousClock.now
        let draw = state.withLock { state in
            guard now - state.started >= .milliseconds(300) else { return false }
            if let last = state.lastDrawn, now - last < .milliseconds(100) { return false }
            state.lastDrawn = now
            return true
        }
        if draw { write("\r\u{1B}[K" + Self.render(progress, width: Self.terminalWidth())) }
    }

    /// Erases the line, if one was drawn.
    func finish() {
        guard enabled, state.withLock({ $0.lastDrawn != nil }) else { return }
        write("\r\u{1B}[K")
    }

    /// The line for `progress` in at most `width` columns.
    static func render(_ progress: Syncer.Progress, width: Int) -> String {
        let received = "received \(grouped(progress.received))"
        guard progress.toSend > 0 else { return String("Syncing: \(received)".prefix(width)) }
        let counts = "\(grouped(progress.sent))/\(grouped(progress.toSend)) sent · \(received)"
        let barWidth = max(0, min(30, width - counts.count - 12))
        guard barWidth >= 5 else { return String("Syncing: \(counts)".prefix(width)) }
        let filled = barWidth * min(progress.sent, progress.toSend) / progress.toSend
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: barWidth - filled)
        return "Syncing [\(bar)] \(counts)"
    }

    static func grouped(_ number: Int) -> String {
        let digits = String(number)
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(digit)
        }
        return result
    }

    private static func terminalWidth() -> Int {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    private func write(_ text: String) {
        _ = text.withCString { Foundation.write(STDERR_FILENO, $0, strlen($0)) }
    }
}

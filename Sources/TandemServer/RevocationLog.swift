import Foundation
package import TandemCore

/// The revocations a store heard of, in order, each with the member whose credentials it
/// revoked (nil: it cannot say whose, as when notices may have been missed). Live
/// connections wake at each; a connection checks its token again only for its own
/// member's revocation or one that names nobody, so a revocation does not make every live
/// connection of every instance read the store at once.
package final class RevocationLog: @unchecked Sendable {
    // @unchecked: `recent` is read and written under `lock` only.
    private let lock = NSLock()
    private var recent: [MemberID?] = []
    /// Fired once per notice, under `lock`: its count is the number of notices heard.
    private let signal = CommitSignal()
    /// How many notices are kept to say whose they were; a waiter further behind checks.
    static let kept = 4_096

    package init() {}

    /// A notice: `member`'s credentials were revoked (nil: someone's, or notices were missed).
    package func heard(_ member: MemberID?) {
        lock.lock()
        defer { lock.unlock() }
        recent.append(member)
        if recent.count > Self.kept { recent.removeFirst(recent.count - Self.kept) }
        signal.fire()
    }

    /// The number of notices heard so far.
    package var count: Int { signal.fired }

    /// The members the notices after the `heard`-th revoked; nil when one of them names
    /// nobody or they are too many to tell.
    package func members(since heard: Int) -> Set<MemberID>? {
        lock.lock()
        defer { lock.unlock() }
        let new = signal.fired - heard
        guard new >= 0, new <= recent.count else { return nil }
        var members: Set<MemberID> = []
        for member in recent.suffix(new) {
            guard let member else { return nil }
            members.insert(member)
        }
        return members
    }

    /// Returns at once if a notice came after the `heard`-th, else at the next, or after `timeout`.
    package func wait(after heard: Int, upTo timeout: Duration) async {
        await signal.wait(since: heard, upTo: timeout)
    }
}

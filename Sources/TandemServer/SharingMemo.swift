import Foundation
public import TandemCore
public import TandemProtocol

/// What one member is granted and whom they deal with, in one state of the store: the
/// policy's grants with their subscription keys and digest, and the directory with its
/// digest. A pull and a live notice need all of it.
public struct SharingView: Sendable, Equatable {
    public var grants: [Grant]
    /// Each grant's subscription key, in the grants' order.
    public var keys: [String]
    /// `SubscriptionDigest` of the grants: what a device holding the same subscriptions names.
    public var subscriptionDigest: String
    /// The names and roles of the members the caller deals with (`Directory`), by name.
    public var directory: [DirectoryMember]
    public var directoryDigest: String

    /// The view of `principal` in the snapshot `store` reads, evaluated afresh.
    static func evaluate(for principal: Principal, policy: any SharingPolicy, in store: some PullReads) throws -> (SharingView, SharingEvaluation.Reuse?) {
        let evaluation: SharingEvaluation
        do {
            evaluation = try policy.evaluation(for: principal, in: store)
        } catch {
            // Never an empty list: a device would purge what it holds.
            throw ServerError.unavailable("The server cannot evaluate sharing right now; try again later.")
        }
        let grants = evaluation.grants
        let keys = grants.map { $0.key(for: principal) }
        let directory = try store.names(of: try Directory.members(for: principal, grants: grants, in: store))
            .map { DirectoryMember(member: $0.key.hex, name: $0.value.name, role: $0.value.role.rawValue) }
            .sorted { ($0.name, $0.member) < ($1.name, $1.member) }
        let view = SharingView(
            grants: grants, keys: keys,
            subscriptionDigest: SubscriptionDigest.of(zip(keys, grants).map { key, grant in (key, grant.untilMillis.map { UInt64(max(0, $0)) }) }),
            directory: directory, directoryDigest: Secrets.directoryDigest(DirectoryMember.lines(directory)))
        return (view, evaluation.reuse)
    }
}

/// Each member's `SharingView`, kept for the next pull while the store's sharing inputs
/// stay as they were: a view is used again only when the snapshot the pull reads shows the
/// same `PullReads.sharingVersion` it was evaluated at, and while its policy says it stands
/// (no consent behind it has expired since, at the policy's clock). The version changes in
/// the same transaction as every change to a consent, a note, an assignment or a member
/// (the stores' triggers), so a revoke or an unassignment still takes effect from its
/// commit, on every server instance: each reads the version in its own snapshot.
///
/// A caught-up mentor's pull then reads no consent, assignment or name: its cost no longer
/// grows with their patients (docs/benchmarks.md). One memo serves one policy: the server's.
public final class SharingMemo: @unchecked Sendable {
    // @unchecked: `version` and `views` are read and written under `lock` only. NSLock,
    // not Synchronization's Mutex: ThreadSanitizer (a CI step) sees pthread locks.
    private let lock = NSLock()
    /// The sharing version every view in `views` was evaluated at.
    private var version: [UInt8] = []
    private var views: [MemberRole: (view: SharingView, reuse: SharingEvaluation.Reuse)] = [:]
    /// The tables a sharing policy and the directory read: a write to any of them changes
    /// the store's sharing version (SQLite's v19-sharing-version, PostgreSQL's
    /// v7-sharing-version). A policy that reads another table must add it here.
    public static let inputTables = ["consent", "note", "assignment", "member"]

    /// At most this many views are kept; when full, all are dropped at once.
    let capacity: Int
    /// Whether each kept view is checked again against the policy before use, and a
    /// difference stops the process: in debug builds (the test suite), so every test that
    /// pulls twice checks the memo.
    let verify: Bool

    public init(capacity: Int = 50_000, verify: Bool = _isDebugAssertConfiguration()) {
        self.capacity = capacity
        self.verify = verify
    }

    private struct MemberRole: Hashable {
        var member: MemberID
        var role: Role
    }

    /// `principal`'s view in the snapshot `store` reads.
    func view(for principal: Principal, policy: any SharingPolicy, in store: some PullReads) throws -> SharingView {
        let version = try store.sharingVersion()
        let key = MemberRole(member: principal.member, role: principal.role)
        let kept = lock.withLock { self.version == version ? views[key] : nil }
        if let kept, kept.reuse.stands() {
            if verify {
                let fresh = try SharingView.evaluate(for: principal, policy: policy, in: store).0
                precondition(fresh == kept.view, "a kept sharing view differs from the policy's in the same snapshot")
            }
            return kept.view
        }
        let (view, reuse) = try SharingView.evaluate(for: principal, policy: policy, in: store)
        if let reuse {
            lock.withLock {
                if self.version != version || views.count >= capacity {
                    // The views of another state are dropped (an older snapshot's pull may come last:
                    // the next pull reads the version again and evaluates afresh).
                    views.removeAll(keepingCapacity: true)
                    self.version = version
                }
                views[key] = (view, reuse)
            }
        }
        return view
    }
}

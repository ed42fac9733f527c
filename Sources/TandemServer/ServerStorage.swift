public import TandemCore
public import TandemProtocol

/// Where the server keeps everything: people and devices, the merged state with its
/// sequence numbers, and the per-replica marks.
///
/// Contract, for every implementation (SQLite embedded, PostgreSQL later):
/// - **Sequence numbers per channel.** Each channel numbers its own changes 1, 2, 3…, so a
///   position a device sees says nothing about other channels (PROTOCOL.md §9.4a).
/// - **No gaps visible to readers.** A reader that has seen sequence number `n` in a
///   channel never later sees a commit with a number `≤ n` appear there: numbers become
///   visible in order (SQLite: one writer, numbers handed out in the write transaction;
///   a store with several writers serializes the writers of one channel on its head row).
/// - **Whole batches.** A push is stored entirely, or not at all.
/// - **Durable before acknowledged.** `push` returns only after the commit is durable.
/// - **Nothing trusted across requests.** Tokens, devices and grants are decided in each
///   request's own read, so a revocation takes effect on the next request. What a server
///   keeps between requests (`KnownTokens`, `SharingMemo`) is used only after that read
///   confirms it: the token looked up again, the sharing version compared.
public protocol ServerStorage: Sendable {
    /// The current epoch (16 random bytes as hex).
    func epoch() async throws -> String

    /// The member and device a token belongs to.
    /// - Throws: `ServerError.unauthorized` or `.revoked`.
    func authenticate(tokenHash: [UInt8]) async throws -> Principal

    /// Binds a new device (with its replica id) to the member of a one-time code.
    /// A code for another role than `expectedRole`, or another member than `expectedMember`,
    /// is refused and stays usable.
    func enroll(
        codeHash: [UInt8], replica: ReplicaID, deviceName: String, tokenHash: [UInt8],
        expectedRole: Role?, expectedMember: MemberID?, nowMillis: UInt64
    ) async throws -> Enrollment

    /// Failed enrollments since `sinceMillis`: from one client address, and in all.
    func enrollFailures(address: String, sinceMillis: UInt64) async throws -> (fromAddress: Int, total: Int)

    /// Counts a failed enrollment from `address`, and forgets failures before `cutoff`.
    func recordEnrollFailure(address: String, atMillis: UInt64, forgettingBefore cutoff: UInt64) async throws

    /// Stores a short-lived code with which `principal` adds another device of their own,
    /// issued by the token `issuerToken` (its hash): revoking that token's device voids it.
    /// - Throws: `ServerError.tooManyCodes` when the member holds `maxUnused` unused link
    ///   codes already.
    func link(
        _ principal: Principal, issuerToken: [UInt8], codeHash: [UInt8], nowMillis: UInt64, expiresMillis: UInt64, maxUnused: Int
    ) async throws

    /// Accepts a batch whole or refuses it whole (PROTOCOL.md §9.3). With `repush` (after a
    /// restore, §9.9) changes of any replica registered to the caller's member are taken.
    /// A push that would take the member's held bytes past `quotaBytes` is refused whole
    /// (`ServerError.overQuota`); one that frees space or stays under it is taken.
    func push(
        _ changes: [Change], from principal: Principal, repush: Bool, nowMillis: UInt64, maxSkewMillis: UInt64, quotaBytes: Int64
    ) async throws -> PushOutcome

    /// The bytes of the changes the server holds in a member's channel (what the quota counts).
    func usage(of member: MemberID) async throws -> Int64

    /// A member's devices (or everyone's, with nil).
    func devices(of member: MemberID?) async throws -> [DeviceInfo]

    /// Runs `body` on one read snapshot of the store: everything a pull reads, the sharing
    /// policy's reads included, comes from one such call (`pull(for:policy:…)`, PullRules).
    func read<T: Sendable>(_ body: @escaping @Sendable (any PullReads) throws -> T) async throws -> T

    /// Runs `body` in one write transaction, durable before this returns: the accounting
    /// of disclosures appends a pull's entries through it before the pull is answered.
    func account<T: Sendable>(_ body: @escaping @Sendable (any AccountingWrites) throws -> T) async throws -> T

    /// Opens (`epoch`) or closes (nil) a device's re-push window: a device told
    /// `epochChanged` may push with `Tandem-Repush: 1` until its next pull in that epoch
    /// (PROTOCOL.md §9.9).
    func setRepushWindow(device: RecordID, epoch: String?) async throws

    /// The commit feed's position: it moves with every commit that advances a channel.
    /// Internal to the server (a device sees only its channels' own sequence numbers).
    func head() async throws -> Int64

    /// The feed of commits: which channels advanced after `position`. Read from the store
    /// itself, so every server instance sharing a store sees every instance's commits.
    func commits(after position: Int64) async throws -> Commits

    /// Returns once the head may have moved past `position` (at once if it has), or after
    /// `timeout`. May return early; callers read `commits(after:)` to know.
    func awaitCommit(after position: Int64, timeout: Duration) async throws

    /// How many revocations this store has heard of so far (by this process, or by another
    /// sharing the store): read it before checking a token, then `awaitRevocation(after:)`
    /// it, so that a revocation heard during the check is not missed. 0 for a store that
    /// cannot tell (the default).
    var revocationsHeard: Int { get }

    /// Returns at once when `revocationsHeard` moved past `heard`, else when a device,
    /// member or token may have been revoked, or after `timeout`: live connections check
    /// their tokens again then. A store that cannot tell waits out `timeout` (the default).
    func awaitRevocation(after heard: Int, timeout: Duration) async

    /// The members whose credentials the revocations heard after the `heard`-th revoked;
    /// nil when the store cannot say (any of them may be anyone's: every live connection
    /// checks its token). The default: nil.
    func membersRevoked(since heard: Int) -> Set<MemberID>?

    // The staff dashboard's sign-in (PROTOCOL.md §9.20): passwords (bcrypt hashes), one-time
    // sign-in codes and sessions, kept in the store so every server instance shares them.

    /// The staff members named `name` (letter case aside) who have a dashboard password, with its hash.
    func dashboardPasswords(named name: String) async throws -> [(member: MemberID, hash: String)]
    /// Uses a sign-in code once: its staff member, when it exists, is unused and unexpired.
    func useSignInCode(_ codeHash: [UInt8], nowMillis: UInt64) async throws -> MemberID?
    /// Opens a session (its token's hash) for a staff member, with its CSRF token.
    func openDashboardSession(_ tokenHash: [UInt8], member: MemberID, csrf: String, nowMillis: UInt64) async throws
    /// The member, name and CSRF token of a session seen within `idleMillis`, whose member is
    /// still staff; it is seen now. A session idle for longer is closed, and nil returned.
    func dashboardSession(_ tokenHash: [UInt8], nowMillis: UInt64, idleMillis: UInt64) async throws -> DashboardSession?
    func closeDashboardSession(_ tokenHash: [UInt8]) async throws
}

extension ServerStorage {
    public var revocationsHeard: Int { 0 }

    public func awaitRevocation(after heard: Int, timeout: Duration) async {
        try? await Task.sleep(for: timeout)
    }

    public func membersRevoked(since heard: Int) -> Set<MemberID>? { nil }

    /// Returns at the next revocation heard of, or after `timeout`.
    public func awaitRevocation(timeout: Duration) async {
        await awaitRevocation(after: revocationsHeard, timeout: timeout)
    }

    /// A push with no quota (tests and tools).
    public func push(_ changes: [Change], from principal: Principal, repush: Bool, nowMillis: UInt64, maxSkewMillis: UInt64) async throws -> PushOutcome {
        try await push(changes, from: principal, repush: repush, nowMillis: nowMillis, maxSkewMillis: maxSkewMillis, quotaBytes: .max)
    }
}

/// Who is calling: a member, and the device they called from.
public struct Principal: Sendable, Equatable {
    public var member: MemberID
    public var role: Role
    public var device: RecordID?
    public var replica: ReplicaID?

    public init(member: MemberID, role: Role, device: RecordID?, replica: ReplicaID?) {
        self.member = member
        self.role = role
        self.device = device
        self.replica = replica
    }
}

/// What a device learns when it enrolls.
public struct Enrollment: Sendable, Equatable, Codable {
    public var member: String
    public var name: String
    public var role: String
    public var epoch: String

    public init(member: String, name: String, role: String, epoch: String) {
        self.member = member
        self.name = name
        self.role = role
        self.epoch = epoch
    }
}

/// What an accepted push did.
public struct PushOutcome: Sendable, Equatable {
    public var accepted: Int
    public var replayed: Int
    /// The pusher's own channel just before and just after this batch, when the batch added
    /// to it: what the channel holds between the two is this batch's changes alone, so a
    /// device whose cursor stood at the first may move it to the second (PROTOCOL.md §9.3).
    public var ownChannel: ChannelStep? = nil
    /// The pushing replica's mark after the batch (PROTOCOL.md §9.3).
    public var mark: HybridTimestamp? = nil
    /// The batch removed text (superseded or deleted): the store must scrub its files.
    var removedText = false

    public init(accepted: Int, replayed: Int, ownChannel: ChannelStep? = nil, mark: HybridTimestamp? = nil) {
        self.accepted = accepted
        self.replayed = replayed
        self.ownChannel = ownChannel
        self.mark = mark
    }
}

/// A channel's highest sequence number before and after one batch, in an epoch.
public struct ChannelStep: Sendable, Equatable {
    public var epoch: String
    public var from: Int64
    public var to: Int64
}

/// A token (its hash) and the principal it named when the server last looked it up: a
/// pull by a caller the server already knows checks its token inside its own read.
public struct TokenCheck: Sendable {
    public var tokenHash: [UInt8]
    public var principal: Principal

    public init(tokenHash: [UInt8], principal: Principal) {
        self.tokenHash = tokenHash
        self.principal = principal
    }
}

public struct PullSnapshot: Sendable {
    /// What the sharing policy granted the caller, and whom they deal with, in the
    /// snapshot's state.
    public var view: SharingView
    /// What the sharing policy granted the caller, in the snapshot's state.
    public var grants: [Grant] { view.grants }
    public var epoch: String
    /// Each grant's channel's highest sequence number, in the grants' order: a cursor
    /// beyond its channel's head is from another epoch.
    public var heads: [Int64]
    /// The caller's replica's mark.
    public var mark: HybridTimestamp?
    /// The epoch in which the caller's device may re-push, if its window is open.
    public var repushEpoch: String?
    /// One page per grant, in the grants' order.
    public var pages: [ChannelPage]
    /// The names and roles of the members the caller deals with (`Directory`), by name.
    public var directory: [DirectoryMember] { view.directory }
    /// The head of the caller's own chain of disclosures (nil: no entries).
    public var accounting: AccountingHead? = nil
}

/// One page of a channel's changes, in sequence order.
public struct ChannelPage: Sendable {
    public var changes: [Change]
    /// The sequence number of the last change returned, or the one asked from.
    public var last: Int64
    public var more: Bool
}

/// What the commit feed says: the channels that advanced after a position, each with its
/// highest sequence number, and the position to ask from next (PROTOCOL.md §9.10).
public struct Commits: Sendable, Equatable {
    /// The feed's position after these commits (`ServerStorage.head()`).
    public var head: Int64
    /// Each advanced channel's highest sequence number after the position asked from.
    public var channels: [MemberID: Int64]
    /// The head went backwards (a restore): every channel may have changed.
    public var reset: Bool

    public init(head: Int64, channels: [MemberID: Int64], reset: Bool = false) {
        self.head = head
        self.channels = channels
        self.reset = reset
    }
}

/// A staff member signed in to the dashboard.
public struct DashboardSession: Sendable, Equatable {
    /// A session's last-seen time moves at most this often (so the idle limit is kept to
    /// within a minute): a store write at every page would cost every page a cold read.
    public static let touchMillis: Int64 = 60_000

    public var member: MemberID
    public var name: String
    public var csrf: String

    public init(member: MemberID, name: String, csrf: String) {
        self.member = member
        self.name = name
        self.csrf = csrf
    }
}

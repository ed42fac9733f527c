public import TandemCore
public import TandemProtocol

/// A store that hands every call to `base`, for wrappers that change one or two calls and
/// forward the rest: the benchmarks' store without accounting (`UnaccountedStorage`), and
/// the tests' stores that fail on purpose. Never part of `tandem serve`.
public protocol ForwardingStorage: ServerStorage {
    var base: any ServerStorage { get }
}

extension ForwardingStorage {
    public func epoch() async throws -> String { try await base.epoch() }
    public func authenticate(tokenHash: [UInt8]) async throws -> Principal { try await base.authenticate(tokenHash: tokenHash) }
    public func enroll(
        codeHash: [UInt8], replica: ReplicaID, deviceName: String, tokenHash: [UInt8], expectedRole: Role?, expectedMember: MemberID?, nowMillis: UInt64
    ) async throws -> Enrollment {
        try await base.enroll(
            codeHash: codeHash, replica: replica, deviceName: deviceName, tokenHash: tokenHash, expectedRole: expectedRole,
            expectedMember: expectedMember, nowMillis: nowMillis)
    }
    public func enrollFailures(address: String, sinceMillis: UInt64) async throws -> (fromAddress: Int, total: Int) {
        try await base.enrollFailures(address: address, sinceMillis: sinceMillis)
    }
    public func recordEnrollFailure(address: String, atMillis: UInt64, forgettingBefore cutoff: UInt64) async throws {
        try await base.recordEnrollFailure(address: address, atMillis: atMillis, forgettingBefore: cutoff)
    }
    public func link(_ principal: Principal, issuerToken: [UInt8], codeHash: [UInt8], nowMillis: UInt64, expiresMillis: UInt64, maxUnused: Int) async throws {
        try await base.link(principal, issuerToken: issuerToken, codeHash: codeHash, nowMillis: nowMillis, expiresMillis: expiresMillis, maxUnused: maxUnused)
    }
    public func push(
        _ changes: [Change], from principal: Principal, repush: Bool, nowMillis: UInt64, maxSkewMillis: UInt64, quotaBytes: Int64
    ) async throws -> PushOutcome {
        try await base.push(changes, from: principal, repush: repush, nowMillis: nowMillis, maxSkewMillis: maxSkewMillis, quotaBytes: quotaBytes)
    }
    public func usage(of member: MemberID) async throws -> Int64 { try await base.usage(of: member) }
    public func devices(of member: MemberID?) async throws -> [DeviceInfo] { try await base.devices(of: member) }
    public func read<T: Sendable>(_ body: @escaping @Sendable (any PullReads) throws -> T) async throws -> T { try await base.read(body) }
    public func account<T: Sendable>(_ body: @escaping @Sendable (any AccountingWrites) throws -> T) async throws -> T { try await base.account(body) }
    public func setRepushWindow(device: RecordID, epoch: String?) async throws { try await base.setRepushWindow(device: device, epoch: epoch) }
    public func head() async throws -> Int64 { try await base.head() }
    public func commits(after position: Int64) async throws -> Commits { try await base.commits(after: position) }
    public func awaitCommit(after position: Int64, timeout: Duration) async throws { try await base.awaitCommit(after: position, timeout: timeout) }
    public var revocationsHeard: Int { base.revocationsHeard }
    public func awaitRevocation(after heard: Int, timeout: Duration) async { await base.awaitRevocation(after: heard, timeout: timeout) }
    public func membersRevoked(since heard: Int) -> Set<MemberID>? { base.membersRevoked(since: heard) }
    public func dashboardPasswords(named name: String) async throws -> [(member: MemberID, hash: String)] {
        try await base.dashboardPasswords(named: name)
    }
    public func useSignInCode(_ codeHash: [UInt8], nowMillis: UInt64) async throws -> MemberID? {
        try await base.useSignInCode(codeHash, nowMillis: nowMillis)
    }
    public func openDashboardSession(_ tokenHash: [UInt8], member: MemberID, csrf: String, nowMillis: UInt64) async throws {
        try await base.openDashboardSession(tokenHash, member: member, csrf: csrf, nowMillis: nowMillis)
    }
    public func dashboardSession(_ tokenHash: [UInt8], nowMillis: UInt64, idleMillis: UInt64) async throws -> DashboardSession? {
        try await base.dashboardSession(tokenHash, nowMillis: nowMillis, idleMillis: idleMillis)
    }
    public func closeDashboardSession(_ tokenHash: [UInt8]) async throws { try await base.closeDashboardSession(tokenHash) }
}

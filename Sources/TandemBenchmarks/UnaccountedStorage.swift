import TandemCore
import TandemProtocol
import TandemServer

/// A store that keeps no accounting of disclosures: `account` runs its body against writes
/// that keep nothing, so a pull that delivers another member's records commits no entry
/// (and waits for no fsync). Only for measuring what the accounting costs, beside the same
/// store with it on (`tandem-bench initial-sync --compare-accounting`); never in `tandem serve`.
struct UnaccountedStorage: ServerStorage {
    let base: any ServerStorage

    /// Keeps nothing: every chain looks empty, and appending drops the entries.
    struct Discarding: AccountingWrites {
        func chainHeads(of subjects: Set<MemberID>) throws -> [MemberID: (sequence: Int64, hash: [UInt8])] { [:] }
        func append(_ disclosures: [Disclosure]) throws {}
        func chainStart(of subject: MemberID) throws -> ChainStart? { nil }
    }

    func account<T: Sendable>(_ body: @escaping @Sendable (any AccountingWrites) throws -> T) async throws -> T { try body(Discarding()) }

    func epoch() async throws -> String { try await base.epoch() }
    func authenticate(tokenHash: [UInt8]) async throws -> Principal { try await base.authenticate(tokenHash: tokenHash) }
    func enroll(
        codeHash: [UInt8], replica: ReplicaID, deviceName: String, tokenHash: [UInt8], expectedRole: Role?, expectedMember: MemberID?, nowMillis: UInt64
    ) async throws -> Enrollment {
        try await base.enroll(
            codeHash: codeHash, replica: replica, deviceName: deviceName, tokenHash: tokenHash, expectedRole: expectedRole,
            expectedMember: expectedMember, nowMillis: nowMillis)
    }
    func enrollFailures(address: String, sinceMillis: UInt64) async throws -> (fromAddress: Int, total: Int) {
        try await base.enrollFailures(address: address, sinceMillis: sinceMillis)
    }
    func recordEnrollFailure(address: String, atMillis: UInt64, forgettingBefore cutoff: UInt64) async throws {
        try await base.recordEnrollFailure(address: address, atMillis: atMillis, forgettingBefore: cutoff)
    }
    func link(_ principal: Principal, issuerToken: [UInt8], codeHash: [UInt8], nowMillis: UInt64, expiresMillis: UInt64, maxUnused: Int) async throws {
        try await base.link(principal, issuerToken: issuerToken, codeHash: codeHash, nowMillis: nowMillis, expiresMillis: expiresMillis, maxUnused: maxUnused)
    }
    func push(
        _ changes: [Change], from principal: Principal, repush: Bool, nowMillis: UInt64, maxSkewMillis: UInt64, quotaBytes: Int64
    ) async throws -> PushOutcome {
        try await base.push(changes, from: principal, repush: repush, nowMillis: nowMillis, maxSkewMillis: maxSkewMillis, quotaBytes: quotaBytes)
    }
    func usage(of member: MemberID) async throws -> Int64 { try await base.usage(of: member) }
    func devices(of member: MemberID?) async throws -> [DeviceInfo] { try await base.devices(of: member) }
    func read<T: Sendable>(_ body: @escaping @Sendable (any PullReads) throws -> T) async throws -> T { try await base.read(body) }
    func setRepushWindow(device: RecordID, epoch: String?) async throws { try await base.setRepushWindow(device: device, epoch: epoch) }
    func head() async throws -> Int64 { try await base.head() }
    func commits(after position: Int64) async throws -> Commits { try await base.commits(after: position) }
    func awaitCommit(after position: Int64, timeout: Duration) async throws { try await base.awaitCommit(after: position, timeout: timeout) }
}

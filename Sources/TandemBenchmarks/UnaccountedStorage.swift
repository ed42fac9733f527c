import TandemCore
import TandemProtocol
import TandemServer

/// A store that keeps no accounting of disclosures: `account` runs its body against writes
/// that keep nothing, so a pull that delivers another member's records commits no entry
/// (and waits for no fsync). Only for measuring what the accounting costs, beside the same
/// store with it on (`tandem-bench initial-sync --compare-accounting`); never in `tandem serve`.
struct UnaccountedStorage: ForwardingStorage {
    let base: any ServerStorage

    /// Keeps nothing: every chain looks empty, and appending drops the entries.
    struct Discarding: AccountingWrites {
        func chainHeads(of subjects: Set<MemberID>) throws -> [MemberID: (sequence: Int64, hash: [UInt8])] { [:] }
        func append(_ disclosures: [Disclosure]) throws {}
        func chainStart(of subject: MemberID) throws -> ChainStart? { nil }
    }

    func account<T: Sendable>(_ body: @escaping @Sendable (any AccountingWrites) throws -> T) async throws -> T { try body(Discarding()) }
}

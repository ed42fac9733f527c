import Crypto
import TandemCore

// The chain's hashing (swift-crypto), apart from the wire types in Disclosure.swift: the
// fuzz build (scripts/fuzz) compiles the parsers without swift-crypto, and they never hash.
extension Disclosure {
    /// The hash of an entry with these fields after `previous`.
    public static func chainHash(previous: [UInt8], _ canonicalBytes: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: canonicalBytes)
        return Array(hasher.finalize())
    }

    /// The first entry of a subject's chain, in sequence order, that does not follow from
    /// the one before it (the first from the chain's start: sequence 1 after `genesis`, or
    /// the entry after `start` once pruned): edited, removed, reordered or inserted. nil:
    /// the chain holds. (Removing a chain's last entries, or all of it, leaves nothing here
    /// to notice: the heads a patient's devices saw are what tell.)
    public static func firstBreak(in chain: [Disclosure], from start: (sequence: Int64, hash: [UInt8])? = nil) -> Disclosure? {
        var expected: (sequence: Int64, hash: [UInt8]) = start ?? (0, genesis)
        for entry in chain {
            if entry.sequence != expected.sequence + 1 || entry.previous != expected.hash { return entry }
            guard Disclosure.chainHash(previous: entry.previous, entry.canonicalBytes) == entry.hash else { return entry }
            expected = (entry.sequence, entry.hash)
        }
        return nil
    }
}

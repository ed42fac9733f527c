import Foundation
import GRDB
public import TandemCore
public import TandemProtocol

extension ReplicaStore {
    /// The last entry of the member's chain this device holds (sequence and hash), or the
    /// chain's start.
    public func accountingTail() throws -> (sequence: Int64, hash: [UInt8]) {
        do {
            return try queue.read { db in
                guard let text = try String.fetchOne(db, sql: "SELECT entry FROM disclosure ORDER BY sequence DESC LIMIT 1"),
                      let entry = try? JSONDecoder().decode(DisclosureEntry.self, from: Data(text.utf8)), let hash = bytes(hex: entry.hash)
                else { return (0, Disclosure.genesis) }
                return (entry.sequence, hash)
            }
        } catch {
            throw map(error)
        }
    }

    /// Appends entries of the member's own chain, in order, each checked against the one
    /// before (the device's last, for the first; or the chain's `start` when the server
    /// pruned past the device's last). Stops at the first that does not follow and returns
    /// its sequence number (nil: all appended).
    public func appendDisclosures(_ entries: [DisclosureEntry], from start: (sequence: Int64, hash: [UInt8])? = nil) throws -> Int64? {
        guard let member = try binding()?.member else { return nil }
        var (sequence, hash) = try accountingTail()
        if let start, start.sequence > sequence { (sequence, hash) = start }
        var accepted: [(Int64, String)] = []
        var broken: Int64? = nil
        for entry in entries {
            guard let disclosure = entry.disclosure(of: member), disclosure.sequence == sequence + 1, disclosure.previous == hash,
                  Disclosure.chainHash(previous: disclosure.previous, disclosure.canonicalBytes) == disclosure.hash
            else {
                broken = entry.sequence
                break
            }
            accepted.append((entry.sequence, String(decoding: try JSONEncoder().encode(entry), as: UTF8.self)))
            (sequence, hash) = (disclosure.sequence, disclosure.hash)
        }
        do {
            try queue.write { db in
                for (sequence, text) in accepted {
                    try db.execute(sql: "INSERT INTO disclosure (sequence, entry) VALUES (?, ?)", arguments: [sequence, text])
                }
            }
        } catch {
            throw map(error)
        }
        return broken
    }

    /// Keeps a head of the member's chain that a pull showed.
    public func noteAccountingHead(_ head: AccountingHead, seenMillis: UInt64) throws {
        do {
            try queue.write { db in
                try db.execute(
                    sql: "INSERT OR IGNORE INTO disclosure_head (sequence, hash, seen) VALUES (?, ?, ?)",
                    arguments: [head.sequence, head.hash, Int64(clamping: seenMillis)])
            }
        } catch {
            throw map(error)
        }
    }

    /// The member's chain as this device holds it, in order.
    public func disclosureEntries() throws -> [DisclosureEntry] {
        do {
            return try queue.read { db in
                try String.fetchAll(db, sql: "SELECT entry FROM disclosure ORDER BY sequence").compactMap {
                    try? JSONDecoder().decode(DisclosureEntry.self, from: Data($0.utf8))
                }
            }
        } catch {
            throw map(error)
        }
    }

    /// Every head of the chain a pull showed, with when, oldest first.
    public func accountingHeads() throws -> [(head: AccountingHead, seenMillis: UInt64)] {
        do {
            return try queue.read { db in
                try Row.fetchAll(db, sql: "SELECT sequence, hash, seen FROM disclosure_head ORDER BY sequence, seen").map {
                    (AccountingHead(sequence: $0["sequence"], hash: $0["hash"]), UInt64(max(0, $0["seen"] as Int64)))
                }
            }
        } catch {
            throw map(error)
        }
    }
}

import Foundation
import GRDB
import TandemSQLite
public import TandemCore
public import TandemProtocol

extension SQLiteServerStorage {
    public func account<T: Sendable>(_ body: @escaping @Sendable (any AccountingWrites) throws -> T) async throws -> T {
        try await pool.write { db in try body(SQLiteTransaction(db)) }
    }

    public func disclosures(of subject: MemberID?) async throws -> [Disclosure] {
        try await pool.read { db in
            let rows = try subject.map {
                try Row.fetchAll(db, sql: "SELECT * FROM disclosure WHERE subject = ? ORDER BY seq", arguments: [Data($0.bytes)])
            } ?? Row.fetchAll(db, sql: "SELECT * FROM disclosure ORDER BY subject, seq")
            return try rows.map(Self.disclosure)
        }
    }

    public func chainStarts() async throws -> [MemberID: ChainStart] {
        try await pool.read { db in
            var starts: [MemberID: ChainStart] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM disclosure_start") {
                starts[try MemberID(bytes: row["subject"] as Data)] = Self.chainStart(row)
            }
            return starts
        }
    }

    public func pruneDisclosures(recordedBefore cutoff: Int64) async throws -> Int {
        let subjects = try await pool.read { db in
            try Data.fetchAll(db, sql: "SELECT DISTINCT subject FROM disclosure WHERE at < ?", arguments: [cutoff])
        }
        // One short write transaction per chain: pulls that record wait for one chain at most.
        var pruned = 0
        for subject in subjects {
            pruned += try await pool.write { db in
                // The chain's oldest entries, up to the first one recorded at or after the cutoff.
                let kept = try Int64.fetchOne(db, sql: "SELECT min(seq) FROM disclosure WHERE subject = ? AND at >= ?", arguments: [subject, cutoff])
                guard let last = try Row.fetchOne(
                    db, sql: "SELECT seq, hash, at FROM disclosure WHERE subject = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
                    arguments: [subject, kept ?? .max])
                else { return 0 }
                try db.execute(
                    sql: "INSERT OR REPLACE INTO disclosure_start (subject, seq, hash, at) VALUES (?, ?, ?, ?)",
                    arguments: [subject, last["seq"] as Int64, last["hash"] as Data, last["at"] as Int64])
                try db.execute(sql: "DELETE FROM disclosure WHERE subject = ? AND seq <= ?", arguments: [subject, last["seq"] as Int64])
                return db.changesCount
            }
        }
        return pruned
    }

    static func chainStart(_ row: Row) -> ChainStart {
        ChainStart(sequence: row["seq"], hash: hexString(row["hash"] as Data), at: row["at"])
    }

    static func disclosure(_ row: Row) throws -> Disclosure {
        let records = Array(row["records"] as Data)
        guard records.count % 16 == 0 else { throw ServerError.unavailable("A disclosure entry's records are damaged.") }
        return Disclosure(
            subject: try MemberID(bytes: row["subject"] as Data), sequence: row["seq"], atMillis: row["at"],
            recipient: try MemberID(bytes: row["recipient"] as Data), device: try (row["device"] as Data?).map { try RecordID(bytes: $0) },
            scope: row["scope"], consent: try (row["consent"] as Data?).map { try RecordID(bytes: $0) },
            records: try stride(from: 0, to: records.count, by: 16).map { try RecordID(bytes: records[$0..<($0 + 16)]) },
            previous: Array(row["previous"] as Data), hash: Array(row["hash"] as Data))
    }
}

extension SQLiteTransaction {
    func accountingHead(of subject: MemberID) throws -> (sequence: Int64, hash: [UInt8])? {
        // Stepped through the C API: every pull reads its member's.
        var head: (sequence: Int64, hash: [UInt8])?
        try db.query("SELECT seq, hash FROM disclosure WHERE subject = ? ORDER BY seq DESC LIMIT 1", { $0.blob(subject.bytes) }) { row in
            head = (row.int(0), row.blob(1))
        }
        return head
    }

    func disclosures(of subject: MemberID, after sequence: Int64, limit: Int) throws -> [Disclosure] {
        try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM disclosure WHERE subject = ? AND seq > ? ORDER BY seq LIMIT ?"),
            arguments: [Data(subject.bytes), sequence, limit]
        ).map(SQLiteServerStorage.disclosure)
    }

    func chainStart(of subject: MemberID) throws -> ChainStart? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, hash, at FROM disclosure_start WHERE subject = ?"), arguments: [Data(subject.bytes)])
            .map(SQLiteServerStorage.chainStart)
    }

    func deviceNames(of devices: Set<RecordID>) throws -> [RecordID: String] {
        var names: [RecordID: String] = [:]
        let statement = try db.cachedStatement(sql: "SELECT name FROM device WHERE id = ?")
        for device in devices { names[device] = try String.fetchOne(statement, arguments: [Data(device.bytes)]) }
        return names
    }
}

extension SQLiteTransaction: AccountingWrites {
    func chainHeads(of subjects: Set<MemberID>) throws -> [MemberID: (sequence: Int64, hash: [UInt8])] {
        var heads: [MemberID: (sequence: Int64, hash: [UInt8])] = [:]
        let statement = try db.cachedStatement(sql: "SELECT seq, hash FROM disclosure WHERE subject = ? ORDER BY seq DESC LIMIT 1")
        for subject in subjects {
            guard let row = try Row.fetchOne(statement, arguments: [Data(subject.bytes)]) else { continue }
            heads[subject] = (row["seq"], Array(row["hash"] as Data))
        }
        return heads
    }

    func append(_ disclosures: [Disclosure]) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO disclosure (subject, seq, at, recipient, device, scope, consent, records, previous, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for entry in disclosures {
            try statement.execute(arguments: [
                Data(entry.subject.bytes), entry.sequence, entry.atMillis, Data(entry.recipient.bytes), entry.device.map { Data($0.bytes) },
                entry.scope, entry.consent.map { Data($0.bytes) }, Data(entry.records.flatMap(\.bytes)), Data(entry.previous), Data(entry.hash),
            ])
        }
    }
}

import ArgumentParser
import Foundation
import GRDB
import GRDBSQLite
import TandemCore
import TandemStore
import TandemWorkload

/// Issue 3's benchmark: applying remote changes into a fresh device store, against plain
/// SQLite upserts of the same changes, same batches, same order, same pragmas.
struct StoreApplyBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store-apply",
        abstract: "Apply N remote changes (20 replicas, batches per transaction) into a fresh store; compare with plain SQLite."
    )

    @Option(help: "Changes to apply.")
    var changes = 1_000_000

    @Option(help: "Changes per batch (one transaction each).")
    var batch = 1_000

    @Option(help: "Rounds of each engine; the best time counts.")
    var rounds = 2

    @Option(help: "Working folder (default: a new temporary one).")
    var work: String?

    func run() throws {
        let folder = work ?? FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { if work == nil { try? FileManager.default.removeItem(atPath: folder) } }

        let input = folder + "/batches.bin"
        let generated = now()
        let count = try Self.writeBatches(to: input, changes: changes, batch: batch)
        print("Generated \(count) changes from 20 replicas in \(format(now() - generated, 1)) s (batches of \(batch), \(fileBytes(input)) bytes encoded).")

        var results: [String: [PhaseResult]] = [:]
        for round in 0..<rounds {
            for engine in ["raw", "tandem"] {
                let db = "\(folder)/\(engine)-\(round).sqlite"
                let output = try runSelf(["store-apply-phase", "--engine", engine, "--input", input, "--db", db])
                let result = try JSONDecoder().decode(PhaseResult.self, from: Data(output.utf8))
                print("  round \(round + 1) \(engine): \(format(result.seconds)) s, \(Int(Double(result.changes) / result.seconds)) changes/s, peak \(result.peakRSS / 1_048_576) MB")
                results[engine, default: []].append(result)
                try? FileManager.default.removeItem(atPath: db)
                try? FileManager.default.removeItem(atPath: db + "-wal")
                try? FileManager.default.removeItem(atPath: db + "-shm")
            }
        }
        guard let tandem = results["tandem"]?.min(by: { $0.seconds < $1.seconds }),
              let raw = results["raw"]?.min(by: { $0.seconds < $1.seconds }) else { return }
        let tandemRate = Double(tandem.changes) / tandem.seconds
        let ratio = tandem.seconds / raw.seconds
        print("""

            | engine | seconds | changes/s | peak RSS | store bytes/change |
            |---|---|---|---|---|
            | Tandem store | \(format(tandem.seconds)) | \(Int(tandemRate)) | \(tandem.peakRSS / 1_048_576) MB | \(format(Double(tandem.storeBytes) / Double(tandem.changes), 1)) |
            | plain SQLite upsert | \(format(raw.seconds)) | \(Int(Double(raw.changes) / raw.seconds)) | \(raw.peakRSS / 1_048_576) MB | \(format(Double(raw.storeBytes) / Double(raw.changes), 1)) |

            Ratio Tandem/raw: \(format(ratio)) (target ≤ 2.0) \(ratio <= 2 ? "met" : "NOT MET")
            Tandem changes/s: \(Int(tandemRate)) (target ≥ 80,000) \(tandemRate >= 80_000 ? "met" : "NOT MET")
            Tandem peak memory: \(tandem.peakRSS / 1_048_576) MB (target < 300 MB) \(tandem.peakRSS < 300 << 20 ? "met" : "NOT MET")
            """)
    }

    /// Writes `[length (4 bytes LE) · ChangeBatch bytes]*`.
    static func writeBatches(to path: String, changes count: Int, batch: Int) throws -> Int {
        // 10 patients on two devices each: 20 replicas, about 13 changes a patient a day.
        var options = Workload.Options(patients: 10, days: max(1, count / 120 + 30), seed: 2026)
        options.patientsPerMentor = 0
        let workload = try Workload.generate(options)
        let changes = workload.changes.prefix(count)
        guard changes.count == count else { throw BenchError.badInput("the workload made only \(changes.count) changes") }
        var out = Data()
        for start in stride(from: changes.startIndex, to: changes.endIndex, by: batch) {
            let bytes = ChangeBatch(Array(changes[start..<min(start + batch, changes.endIndex)])).encoded()
            var length = UInt32(bytes.count).littleEndian
            withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
            out.append(contentsOf: bytes)
        }
        try out.write(to: URL(fileURLWithPath: path))
        return changes.count
    }
}

struct PhaseResult: Codable {
    var changes: Int
    var seconds: Double
    var peakRSS: Int
    var storeBytes: Int
}

/// One engine in its own process, so its peak memory is its own.
struct StoreApplyPhase: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "store-apply-phase", shouldDisplay: false)

    @Option var engine: String
    @Option var input: String
    @Option var db: String

    func run() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: input))
        var batches: [[UInt8]] = []
        var offset = 0
        while offset + 4 <= data.count {
            let length = Int(data[offset]) | Int(data[offset + 1]) << 8 | Int(data[offset + 2]) << 16 | Int(data[offset + 3]) << 24
            batches.append(Array(data[(offset + 4)..<(offset + 4 + length)]))
            offset += 4 + length
        }
        var total = 0
        let start = now()
        switch engine {
        case "tandem":
            let store = try ReplicaStore.create(at: db, name: "bench", role: .mentor, wallMillis: 0)
            for bytes in batches {
                let changes = try ChangeBatch(decoding: bytes).changes
                try store.apply(changes)
                total += changes.count
            }
        case "raw":
            total = try RawSQLite.apply(batches, path: db)
        default:
            throw BenchError.badInput("engine \(engine)")
        }
        let seconds = now() - start
        let result = PhaseResult(changes: total, seconds: seconds, peakRSS: peakRSSBytes(), storeBytes: fileBytes(db))
        print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }
}

/// The baseline: one prepared upsert per change into a table keyed by (record, field), no
/// log, the same pragmas as the store's `apply` (`ReplicaStore.connectionPragmas`), one
/// transaction per batch.
enum RawSQLite {
    static func apply(_ batches: [[UInt8]], path: String) throws -> Int {
        var db: OpaquePointer?
        guard sqlite3_open(path, &db) == SQLITE_OK, let db else { throw BenchError.badInput("cannot open \(path)") }
        defer { sqlite3_close(db) }
        func exec(_ sql: String) throws {
            guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw BenchError.badInput(String(cString: sqlite3_errmsg(db))) }
        }
        try exec("PRAGMA journal_mode = WAL; " + ReplicaStore.connectionPragmas)
        try exec("CREATE TABLE state (record BLOB NOT NULL, field TEXT NOT NULL, ts INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (record, field)) WITHOUT ROWID")
        var statement: OpaquePointer?
        let sql = """
            INSERT INTO state (record, field, ts, value) VALUES (?, ?, ?, ?)
            ON CONFLICT(record, field) DO UPDATE SET ts = excluded.ts, value = excluded.value WHERE excluded.ts > ts
            """
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw BenchError.badInput(String(cString: sqlite3_errmsg(db)))
        }
        defer { sqlite3_finalize(statement) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        var total = 0
        for bytes in batches {
            let changes = try ChangeBatch(decoding: bytes).changes
            try exec("BEGIN")
            for change in changes {
                let record = change.record.bytes
                let value = change.value.encoded
                record.withUnsafeBytes { _ = sqlite3_bind_blob(statement, 1, $0.baseAddress, Int32($0.count), transient) }
                sqlite3_bind_text(statement, 2, change.field.rawValue, -1, transient)
                sqlite3_bind_int64(statement, 3, Int64(change.timestamp.wallMillis << 16 | UInt64(change.timestamp.counter)))
                value.withUnsafeBytes { _ = sqlite3_bind_blob(statement, 4, $0.baseAddress, Int32($0.count), transient) }
                guard sqlite3_step(statement) == SQLITE_DONE else { throw BenchError.badInput(String(cString: sqlite3_errmsg(db))) }
                sqlite3_reset(statement)
                total += 1
            }
            try exec("COMMIT")
        }
        return total
    }
}

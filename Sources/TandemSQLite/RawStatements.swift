public import GRDB
public import GRDBSQLite

/// Binds and steps GRDB's cached statements through the SQLite C API: the hot paths of the
/// device's store (every merged change passes here) and of the server's pull, without
/// GRDB's per-argument boxing and its rows.
public struct Binder {
    public let statement: OpaquePointer
    private var index: Int32 = 1

    public init(_ statement: OpaquePointer) { self.statement = statement }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    public mutating func blob(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { _ = sqlite3_bind_blob(statement, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count), Self.transient) }
        index += 1
    }

    public mutating func text(_ value: String) {
        _ = sqlite3_bind_text(statement, index, value, -1, Self.transient)
        index += 1
    }

    public mutating func int(_ value: Int64) {
        _ = sqlite3_bind_int64(statement, index, value)
        index += 1
    }

    public mutating func int(_ value: Int?) {
        if let value { _ = sqlite3_bind_int64(statement, index, Int64(value)) } else { _ = sqlite3_bind_null(statement, index) }
        index += 1
    }

    public mutating func text(_ value: String?) {
        if let value { text(value) } else { _ = sqlite3_bind_null(statement, index); index += 1 }
    }
}

/// Reads the columns of the current row.
public struct Columns {
    public let statement: OpaquePointer

    public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    /// nil for SQL NULL.
    public func optionalInt(_ column: Int32) -> Int64? {
        sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : sqlite3_column_int64(statement, column)
    }

    public func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(statement, column) else { return "" }
        return String(cString: pointer)
    }

    /// nil for SQL NULL.
    public func optionalText(_ column: Int32) -> String? {
        sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : text(column)
    }

    /// A 16-byte blob (an id) as its two big-endian halves, read in place; nil for any
    /// other length. For loops over many rows: no array is made.
    public func halves(_ column: Int32) -> (high: UInt64, low: UInt64)? {
        guard let pointer = sqlite3_column_blob(statement, column), sqlite3_column_bytes(statement, column) == 16 else { return nil }
        let raw = UnsafeRawBufferPointer(start: pointer, count: 16)
        return (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)), UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }

    /// nil for SQL NULL.
    public func optionalBlob(_ column: Int32) -> [UInt8]? {
        sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : blob(column)
    }

    public func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let pointer = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

extension Database {
    /// Runs a cached statement once with `bind`'s arguments.
    public func run(_ sql: String, _ bind: (inout Binder) -> Void) throws {
        let statement = try cachedStatement(sql: sql).sqliteStatement
        var binder = Binder(statement)
        bind(&binder)
        let code = sqlite3_step(statement)
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        guard code == SQLITE_DONE || code == SQLITE_ROW else { throw failure(code) }
    }

    /// Runs a cached query, calling `row` for each result row.
    public func query(_ sql: String, _ bind: (inout Binder) -> Void, row: (Columns) throws -> Void) throws {
        let statement = try cachedStatement(sql: sql).sqliteStatement
        var binder = Binder(statement)
        bind(&binder)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else { throw failure(code) }
            try row(Columns(statement: statement))
        }
    }

    private func failure(_ code: Int32) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(sqliteConnection)))
    }
}

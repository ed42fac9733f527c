import Foundation
import GRDB
public import TandemCore

// The staff dashboard's sign-in on the embedded store (PROTOCOL.md §9.20).
extension SQLiteServerStorage {
    public func setDashboardPassword(_ hash: String, of member: MemberID, nowMillis: UInt64) async throws {
        try await pool.write { db in
            let key = Data(member.bytes)
            guard try String.fetchOne(db, sql: "SELECT role FROM member WHERE id = ?", arguments: [key]) == Role.staff.rawValue else {
                throw ServerError.badRequest("Only a staff member signs in to the dashboard.")
            }
            try db.execute(sql: "INSERT OR REPLACE INTO dashboard_password (member, hash, set_at) VALUES (?, ?, ?)", arguments: [key, hash, Int64(nowMillis)])
            try db.execute(sql: "DELETE FROM dashboard_session WHERE member = ?", arguments: [key])
        }
    }

    public func addSignInCode(_ codeHash: [UInt8], for member: MemberID, nowMillis: UInt64, expiresMillis: UInt64) async throws {
        try await pool.write { db in
            let key = Data(member.bytes)
            guard try String.fetchOne(db, sql: "SELECT role FROM member WHERE id = ?", arguments: [key]) == Role.staff.rawValue else {
                throw ServerError.badRequest("Only a staff member signs in to the dashboard.")
            }
            try db.execute(sql: "DELETE FROM sign_in_code WHERE expires <= ?", arguments: [Int64(nowMillis)])
            try db.execute(
                sql: "INSERT INTO sign_in_code (hash, member, created_at, expires, used) VALUES (?, ?, ?, ?, 0)",
                arguments: [Data(codeHash), key, Int64(nowMillis), Int64(expiresMillis)])
        }
    }

    public func dashboardPasswords(named name: String) async throws -> [(member: MemberID, hash: String)] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT m.id, m.name, p.hash FROM dashboard_password p JOIN member m ON m.id = p.member WHERE m.role = 'staff'
                """).compactMap { row in
                guard Member.name(row["name"], matches: name), let id = try? MemberID(bytes: row["id"] as Data) else { return nil }
                return (id, row["hash"])
            }
        }
    }

    public func useSignInCode(_ codeHash: [UInt8], nowMillis: UInt64) async throws -> MemberID? {
        try await pool.write { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT c.member FROM sign_in_code c JOIN member m ON m.id = c.member
                WHERE c.hash = ? AND c.used = 0 AND c.expires > ? AND m.role = 'staff'
                """, arguments: [Data(codeHash), Int64(nowMillis)]) else { return nil }
            try db.execute(sql: "UPDATE sign_in_code SET used = 1 WHERE hash = ?", arguments: [Data(codeHash)])
            return try? MemberID(bytes: row["member"] as Data)
        }
    }

    public func openDashboardSession(_ tokenHash: [UInt8], member: MemberID, csrf: String, nowMillis: UInt64) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO dashboard_session (token, member, csrf, created_at, seen_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [Data(tokenHash), Data(member.bytes), csrf, Int64(nowMillis), Int64(nowMillis)])
        }
    }

    public func dashboardSession(_ tokenHash: [UInt8], nowMillis: UInt64, idleMillis: UInt64) async throws -> DashboardSession? {
        try await pool.write { db in
            let token = Data(tokenHash)
            guard let row = try Row.fetchOne(db, sql: """
                SELECT s.member, s.csrf, s.seen_at, m.name, m.role FROM dashboard_session s JOIN member m ON m.id = s.member WHERE s.token = ?
                """, arguments: [token]) else { return nil }
            guard row["role"] as String == Role.staff.rawValue, (row["seen_at"] as Int64) + Int64(idleMillis) > Int64(nowMillis),
                  let member = try? MemberID(bytes: row["member"] as Data)
            else {
                try db.execute(sql: "DELETE FROM dashboard_session WHERE token = ?", arguments: [token])
                return nil
            }
            // Seen at most once a minute: a write empties the readers' page caches, and the
            // page that follows would read its rows from the OS again.
            if (row["seen_at"] as Int64) + DashboardSession.touchMillis <= Int64(nowMillis) {
                try db.execute(sql: "UPDATE dashboard_session SET seen_at = ? WHERE token = ?", arguments: [Int64(nowMillis), token])
            }
            return DashboardSession(member: member, name: row["name"], csrf: row["csrf"])
        }
    }

    public func closeDashboardSession(_ tokenHash: [UInt8]) async throws {
        try await pool.write { db in try db.execute(sql: "DELETE FROM dashboard_session WHERE token = ?", arguments: [Data(tokenHash)]) }
    }
}

import Foundation
import PostgresNIO
public import TandemCore
public import TandemServer

// The staff dashboard's sign-in on PostgreSQL (PROTOCOL.md §9.20), shared by every instance.
extension PostgresServerStorage {
    public func setDashboardPassword(_ hash: String, of member: MemberID, nowMillis: UInt64) async throws {
        try await write { db in
            let key = Data(member.bytes)
            guard try db.run("SELECT role FROM member WHERE id = \(key)").first?.decode(String.self) == Role.staff.rawValue else {
                throw ServerError.badRequest("Only a staff member signs in to the dashboard.")
            }
            try db.run("""
                INSERT INTO dashboard_password (member, hash, set_at) VALUES (\(key), \(hash), \(Int64(nowMillis)))
                ON CONFLICT (member) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at
                """)
            try db.run("DELETE FROM dashboard_session WHERE member = \(key)")
        }
    }

    public func addSignInCode(_ codeHash: [UInt8], for member: MemberID, nowMillis: UInt64, expiresMillis: UInt64) async throws {
        try await write { db in
            let key = Data(member.bytes)
            guard try db.run("SELECT role FROM member WHERE id = \(key)").first?.decode(String.self) == Role.staff.rawValue else {
                throw ServerError.badRequest("Only a staff member signs in to the dashboard.")
            }
            try db.run("DELETE FROM sign_in_code WHERE expires <= \(Int64(nowMillis))")
            try db.run("""
                INSERT INTO sign_in_code (hash, member, created_at, expires, used)
                VALUES (\(Data(codeHash)), \(key), \(Int64(nowMillis)), \(Int64(expiresMillis)), 0)
                """)
        }
    }

    public func dashboardPasswords(named name: String) async throws -> [(member: MemberID, hash: String)] {
        try await snapshot { tx in
            try tx.db.run("SELECT m.id, m.name, p.hash FROM dashboard_password p JOIN member m ON m.id = p.member WHERE m.role = 'staff'")
                .compactMap { row in
                    let (id, memberName, hash) = try row.decode((Data, String, String).self)
                    guard Member.name(memberName, matches: name), let member = try? MemberID(bytes: id) else { return nil }
                    return (member, hash)
                }
        }
    }

    public func useSignInCode(_ codeHash: [UInt8], nowMillis: UInt64) async throws -> MemberID? {
        try await write { db in
            // One statement: two instances given the same code at once cannot both use it.
            try db.run("""
                UPDATE sign_in_code c SET used = 1 FROM member m
                WHERE c.hash = \(Data(codeHash)) AND c.used = 0 AND c.expires > \(Int64(nowMillis)) AND m.id = c.member AND m.role = 'staff'
                RETURNING c.member
                """).first.flatMap { try? MemberID(bytes: try $0.decode(Data.self)) }
        }
    }

    public func openDashboardSession(_ tokenHash: [UInt8], member: MemberID, csrf: String, nowMillis: UInt64) async throws {
        try await write { db in
            try db.run("""
                INSERT INTO dashboard_session (token, member, csrf, created_at, seen_at)
                VALUES (\(Data(tokenHash)), \(Data(member.bytes)), \(csrf), \(Int64(nowMillis)), \(Int64(nowMillis)))
                """)
        }
    }

    public func dashboardSession(_ tokenHash: [UInt8], nowMillis: UInt64, idleMillis: UInt64) async throws -> DashboardSession? {
        try await write { db in
            let token = Data(tokenHash)
            guard let row = try db.run("""
                SELECT s.member, s.csrf, s.seen_at, m.name, m.role FROM dashboard_session s JOIN member m ON m.id = s.member
                WHERE s.token = \(token)
                """).first else { return nil }
            let (id, csrf, seen, name, role) = try row.decode((Data, String, Int64, String, String).self)
            guard role == Role.staff.rawValue, seen + Int64(idleMillis) > Int64(nowMillis), let member = try? MemberID(bytes: id) else {
                try db.run("DELETE FROM dashboard_session WHERE token = \(token)")
                return nil
            }
            // Seen at most once a minute, as on SQLite.
            if seen + DashboardSession.touchMillis <= Int64(nowMillis) {
                try db.run("UPDATE dashboard_session SET seen_at = \(Int64(nowMillis)) WHERE token = \(token)")
            }
            return DashboardSession(member: member, name: name, csrf: csrf)
        }
    }

    public func closeDashboardSession(_ tokenHash: [UInt8]) async throws {
        try await write { db in try db.run("DELETE FROM dashboard_session WHERE token = \(Data(tokenHash))") }
    }
}

import Foundation
import GRDB
public import TandemCore
import TandemProtocol

// Administration (tandem admin …, on the server's host): the SQL of `ServerAdministration`.
extension SQLiteServerStorage: ServerAdministration {
    /// Creates the center: its epoch and its first staff member. Returns that member's token.
    /// - Throws: `ServerError.conflict` if the center exists already.
    public func initialize(staffName: String, nowMillis: UInt64) throws -> (member: MemberID, token: String) {
        let token = Secrets.newToken()
        let member = MemberID.random()
        let staffName = try DisplayName.check(staffName, what: "The staff member's name").mapError { ServerError.badRequest($0.message) }.get()
        try pool.write { db in
            guard try Int.fetchOne(db, sql: "SELECT count(*) FROM center") == 0 else {
                throw ServerError.conflict("This server store is already initialized.")
            }
            try db.execute(sql: "INSERT INTO center (singleton, epoch, created_at) VALUES (1, ?, ?)",
                           arguments: [Data(RecordID.random().bytes), Int64(nowMillis)])
            try db.execute(sql: "INSERT INTO member (id, name, role, created_at) VALUES (?, ?, 'staff', ?)",
                           arguments: [Data(member.bytes), staffName, Int64(nowMillis)])
            try db.execute(sql: "INSERT INTO credential (token_hash, member, device, created_at) VALUES (?, ?, NULL, ?)",
                           arguments: [Data(Secrets.hash(token)), Data(member.bytes), Int64(nowMillis)])
        }
        return (member, token)
    }

    /// A one-time enrollment code for a new member (or, with `member`, another device of an
    /// existing one), issued by the host's administrator. Returns the code; only its hash
    /// is stored.
    public func invite(role: Role, name: String, member: MemberID? = nil, nowMillis: UInt64, validForMillis: UInt64 = 72 * 3_600_000) throws -> String {
        let code = Secrets.newCode()
        let name = try DisplayName.check(name, what: "The member's name").mapError { ServerError.badRequest($0.message) }.get()
        try pool.write { db in
            guard try Int.fetchOne(db, sql: "SELECT count(*) FROM center") == 1 else {
                throw ServerError.conflict("Initialize the server first: tandem admin init.")
            }
            try Self.insertCode(
                db, hash: Secrets.hashCode(code), kind: "invite", role: role, name: name, member: member, issuer: nil,
                nowMillis: nowMillis, expiresMillis: nowMillis + validForMillis)
        }
        return code
    }

    static func insertCode(
        _ db: Database, hash: [UInt8], kind: String, role: Role, name: String, member: MemberID?, issuer: [UInt8]?,
        nowMillis: UInt64, expiresMillis: UInt64
    ) throws {
        try db.execute(
            sql: """
                INSERT INTO invite (code_hash, id, kind, role, name, member, issuer_token, created_at, expires)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [Data(hash), Data(RecordID.random().bytes), kind, role.rawValue, name, member.map { Data($0.bytes) },
                        issuer.map { Data($0) }, Int64(nowMillis), Int64(expiresMillis)])
    }

    /// Every member, for `tandem admin members`.
    public func members() throws -> [Member] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, name, role FROM member ORDER BY created_at, id").compactMap { row in
                guard let id = try? MemberID(bytes: row["id"] as Data), let role = Role(rawValue: row["role"]) else { return nil }
                return Member(id: id, name: row["name"], role: role)
            }
        }
    }

    /// Revokes a device: its token stops working on its next request, and every code it
    /// issued and nobody used yet is voided in the same transaction (a stolen device cannot
    /// have minted a way back in).
    /// - Throws: `ServerError.badRequest` for an unknown device id.
    public func revokeDevice(_ id: RecordID) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE device SET revoked = 1 WHERE id = ?", arguments: [Data(id.bytes)])
            guard db.changesCount == 1 else { throw ServerError.badRequest("No device with id \(id.hex).") }
            try db.execute(sql: """
                UPDATE invite SET voided = 1 WHERE used = 0 AND voided = 0
                AND issuer_token IN (SELECT token_hash FROM credential WHERE device = ?)
                """, arguments: [Data(id.bytes)])
            try db.execute(sql: "UPDATE credential SET revoked = 1 WHERE device = ?", arguments: [Data(id.bytes)])
        }
    }

    /// Revokes everything of a member at once: every device, every token (the staff token
    /// too) and every unused code issued by them or enrolling another device of theirs.
    /// Their next request is refused; their live connections close at their next check.
    /// - Throws: `ServerError.badRequest` for an unknown member.
    public func revokeMember(_ member: MemberID) throws -> MemberRevocation {
        try pool.write { db in
            let key = Data(member.bytes)
            guard try Int.fetchOne(db, sql: "SELECT count(*) FROM member WHERE id = ?", arguments: [key]) == 1 else {
                throw ServerError.badRequest("No member with id \(member.hex).")
            }
            try db.execute(sql: """
                UPDATE invite SET voided = 1 WHERE used = 0 AND voided = 0
                AND (member = ? OR issuer_token IN (SELECT token_hash FROM credential WHERE member = ?))
                """, arguments: [key, key])
            let codes = db.changesCount
            try db.execute(sql: "UPDATE device SET revoked = 1 WHERE member = ? AND revoked = 0", arguments: [key])
            let devices = db.changesCount
            try db.execute(sql: "UPDATE credential SET revoked = 1 WHERE member = ? AND revoked = 0", arguments: [key])
            let tokens = db.changesCount
            // Their dashboard sign-in goes too: sessions, password and unused codes.
            for table in ["dashboard_session", "dashboard_password", "sign_in_code"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE member = ?", arguments: [key])
            }
            return MemberRevocation(devices: devices, tokens: tokens, codes: codes)
        }
    }

    /// Replaces a staff member's token that belongs to no device (the one `tandem admin
    /// init` printed): every such token of theirs is revoked, the codes it issued are
    /// voided, and the new token is returned (shown once). With no `member`, the one staff
    /// member holding such a token.
    /// - Throws: `ServerError.badRequest` when no, or more than one, staff member fits.
    public func rotateStaffToken(member: MemberID?, nowMillis: UInt64) throws -> (member: MemberID, token: String) {
        let token = Secrets.newToken()
        let chosen: MemberID = try pool.write { db in
            let holders = try Data.fetchAll(db, sql: """
                SELECT DISTINCT m.id FROM member m JOIN credential c ON c.member = m.id
                WHERE m.role = 'staff' AND c.device IS NULL ORDER BY m.created_at
                """).compactMap { try? MemberID(bytes: $0) }
            let role = try member.flatMap { try String.fetchOne(db, sql: "SELECT role FROM member WHERE id = ?", arguments: [Data($0.bytes)]) }
            let chosen = try Self.staffTokenHolder(named: member, roleOfNamed: role.flatMap(Role.init(rawValue:)), holders: holders)
            let key = Data(chosen.bytes)
            try db.execute(sql: """
                UPDATE invite SET voided = 1 WHERE used = 0 AND voided = 0
                AND issuer_token IN (SELECT token_hash FROM credential WHERE member = ? AND device IS NULL)
                """, arguments: [key])
            try db.execute(sql: "UPDATE credential SET revoked = 1 WHERE member = ? AND device IS NULL", arguments: [key])
            try db.execute(sql: "INSERT INTO credential (token_hash, member, device, created_at) VALUES (?, ?, NULL, ?)",
                           arguments: [Data(Secrets.hash(token)), key, Int64(nowMillis)])
            return chosen
        }
        return (chosen, token)
    }

    /// The codes still usable at `nowMillis`, oldest first.
    public func pendingCodes(nowMillis: UInt64) throws -> [PendingCode] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT i.id, i.role, i.name, i.member, i.expires, c.member AS issuer_member, d.id AS device, d.name AS device_name,
                    i.issuer_token IS NOT NULL AS issued
                FROM invite i LEFT JOIN credential c ON c.token_hash = i.issuer_token LEFT JOIN device d ON d.id = c.device
                WHERE i.used = 0 AND i.voided = 0 AND i.expires > ? ORDER BY i.created_at, i.id
                """, arguments: [Int64(nowMillis)]).compactMap { row in
                guard let id = try? RecordID(bytes: row["id"] as Data), let role = Role(rawValue: row["role"]) else { return nil }
                let issuer: PendingCode.Issuer
                if let device = (row["device"] as Data?).flatMap({ try? RecordID(bytes: $0) }) {
                    issuer = .device(id: device, name: row["device_name"])
                } else if let member = (row["issuer_member"] as Data?).flatMap({ try? MemberID(bytes: $0) }) {
                    issuer = .staffToken(member: member)
                } else {
                    issuer = .administrator
                }
                return PendingCode(
                    id: id, issuer: issuer, role: role, name: row["name"],
                    member: (row["member"] as Data?).flatMap { try? MemberID(bytes: $0) },
                    expiresMillis: UInt64(max(0, row["expires"] as Int64)))
            }
        }
    }

    /// Voids one unused code (`tandem admin invites` lists their ids).
    /// - Throws: `ServerError.badRequest` when no unused code has that id.
    public func revokeCode(_ id: RecordID) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE invite SET voided = 1 WHERE id = ? AND used = 0 AND voided = 0", arguments: [Data(id.bytes)])
            guard db.changesCount == 1 else { throw ServerError.badRequest("No unused code with id \(id.hex).") }
        }
    }

    public func assignments() throws -> [Assignment] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT role, carer, member FROM assignment ORDER BY created_at, role, carer, member").compactMap { row in
                guard let kind = Assignment.Kind(rawValue: row["role"]), let carer = try? MemberID(bytes: row["carer"] as Data),
                      let member = try? MemberID(bytes: row["member"] as Data)
                else { return nil }
                return Assignment(kind, carer: carer, member: member)
            }
        }
    }

    public func setAssignment(_ assignment: Assignment, present: Bool, nowMillis: UInt64) throws -> Bool {
        try pool.write { db in
            let key: [any DatabaseValueConvertible] = [assignment.kind.rawValue, Data(assignment.carer.bytes), Data(assignment.member.bytes)]
            if present {
                try db.execute(sql: "INSERT OR IGNORE INTO assignment (role, carer, member, created_at) VALUES (?, ?, ?, ?)",
                               arguments: StatementArguments(key + [Int64(nowMillis)]))
            } else {
                try db.execute(sql: "DELETE FROM assignment WHERE role = ? AND carer = ? AND member = ?", arguments: StatementArguments(key))
            }
            let changed = db.changesCount == 1
            if changed && assignment.kind == .mentor {
                let pair: [any DatabaseValueConvertible] = [Data(assignment.carer.bytes), Data(assignment.member.bytes), Int64(nowMillis)]
                try db.execute(
                    sql: present
                        // Unassigned and assigned again within one millisecond: the span
                        // closed then, [t, t), is empty; it is open again.
                        ? "INSERT INTO caseload_span (mentor, patient, since) VALUES (?, ?, ?) ON CONFLICT (mentor, patient, since) DO UPDATE SET until = NULL"
                        : "UPDATE caseload_span SET until = ?3 WHERE mentor = ?1 AND patient = ?2 AND until IS NULL",
                    arguments: StatementArguments(pair))
            }
            return changed
        }
    }
}

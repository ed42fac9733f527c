import Foundation
import GRDB
public import TandemCore

// Emergency access and the trail of administration actions: the SQL of their part of
// `ServerAdministration` and `PullReads` (the rules are in EmergencyAccess.swift).
extension SQLiteServerStorage {
    public func addEmergencyAccess(_ access: EmergencyAccess) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO emergency_access (id, patient, staff, recipient, facility, reason, granted_by, granted_at, expires, revoked)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    Data(access.id.bytes), Data(access.patient.bytes), Data(access.staff.bytes), access.recipient, access.facility,
                    access.reason, access.grantedBy, access.grantedMillis, access.expiresMillis, access.revokedMillis,
                ])
        }
    }

    public func revokeEmergencyAccess(_ id: RecordID, atMillis: Int64) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE emergency_access SET revoked = ? WHERE id = ? AND revoked IS NULL",
                arguments: [atMillis, Data(id.bytes)])
            return db.changesCount == 1
        }
    }

    public func emergencyAccesses() async throws -> [EmergencyAccess] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM emergency_access ORDER BY granted_at, id").map(Self.emergencyAccess)
        }
    }

    public func appendAdminLog(_ entry: AdminLogEntry) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO admin_log (at, actor, host, action, detail) VALUES (?, ?, ?, ?, ?)",
                arguments: [entry.atMillis, entry.actor, entry.host, entry.action, entry.detail])
        }
    }

    public func adminLog() async throws -> [AdminLogEntry] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM admin_log ORDER BY id").map { row in
                AdminLogEntry(atMillis: row["at"], actor: row["actor"], host: row["host"], action: row["action"], detail: row["detail"])
            }
        }
    }

    static func emergencyAccess(_ row: Row) throws -> EmergencyAccess {
        EmergencyAccess(
            id: try RecordID(bytes: row["id"] as Data), patient: try MemberID(bytes: row["patient"] as Data),
            staff: try MemberID(bytes: row["staff"] as Data), recipient: row["recipient"], facility: row["facility"], reason: row["reason"],
            grantedBy: row["granted_by"], grantedMillis: row["granted_at"], expiresMillis: row["expires"], revokedMillis: row["revoked"])
    }
}

extension SQLiteTransaction {
    func emergencyAccesses(staff: MemberID) throws -> [EmergencyAccess] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM emergency_access WHERE staff = ?"), arguments: [Data(staff.bytes)])
            .map(SQLiteServerStorage.emergencyAccess)
    }

    func emergencyAccesses(ids: Set<RecordID>) throws -> [RecordID: EmergencyAccess] {
        var accesses: [RecordID: EmergencyAccess] = [:]
        let statement = try db.cachedStatement(sql: "SELECT * FROM emergency_access WHERE id = ?")
        for id in ids {
            guard let row = try Row.fetchOne(statement, arguments: [Data(id.bytes)]) else { continue }
            accesses[id] = try SQLiteServerStorage.emergencyAccess(row)
        }
        return accesses
    }
}

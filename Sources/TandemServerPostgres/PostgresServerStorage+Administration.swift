import Foundation
import PostgresNIO
public import TandemCore
public import TandemProtocol
public import TandemServer

// Administration (`tandem admin … --postgres URL`): the SQL of `ServerAdministration`,
// statement for statement the embedded store's (SQLiteServerStorage+Administration).
extension PostgresServerStorage {
    public func initialize(staffName: String, nowMillis: UInt64) async throws -> (member: MemberID, token: String) {
        let token = Secrets.newToken()
        let member = MemberID.random()
        let staffName = try DisplayName.check(staffName, what: "The staff member's name").mapError { ServerError.badRequest($0.message) }.get()
        let now = Int64(nowMillis)
        try await write { db in
            // The center's row first: of two instances initializing at once, one waits on the
            // other's row and then fails on it, as a second `init` does.
            try db.run("LOCK TABLE center IN EXCLUSIVE MODE")
            guard try db.run("SELECT 1 FROM center").isEmpty else { throw ServerError.conflict("This server store is already initialized.") }
            try db.run("INSERT INTO center (singleton, epoch, created_at) VALUES (1, \(Data(RecordID.random().bytes)), \(now))")
            try db.run("INSERT INTO member (id, name, role, created_at) VALUES (\(Data(member.bytes)), \(staffName), 'staff', \(now))")
            try db.run("""
                INSERT INTO credential (token_hash, member, device, created_at) VALUES (\(Data(Secrets.hash(token))), \(Data(member.bytes)), NULL, \(now))
                """)
        }
        return (member, token)
    }

    public func invite(role: Role, name: String, member: MemberID?, nowMillis: UInt64, validForMillis: UInt64) async throws -> String {
        let code = Secrets.newCode()
        let name = try DisplayName.check(name, what: "The member's name").mapError { ServerError.badRequest($0.message) }.get()
        try await write { db in
            guard try !db.run("SELECT 1 FROM center").isEmpty else { throw ServerError.conflict("Initialize the server first: tandem admin init.") }
            try Self.insertCode(
                db, hash: Secrets.hashCode(code), kind: "invite", role: role, name: name, member: member, issuer: nil,
                nowMillis: nowMillis, expiresMillis: nowMillis + validForMillis)
        }
        return code
    }

    public func members() async throws -> [Member] {
        try await snapshot { tx in
            try tx.db.run("SELECT id, name, role FROM member ORDER BY created_at, id").compactMap { row in
                let (id, name, role) = try row.decode((Data, String, String).self)
                guard let id = try? MemberID(bytes: id), let role = Role(rawValue: role) else { return nil }
                return Member(id: id, name: name, role: role)
            }
        }
    }

    public func revokeDevice(_ id: RecordID) async throws {
        try await write { db in
            let key = Data(id.bytes)
            guard let row = try db.run("UPDATE device SET revoked = 1 WHERE id = \(key) RETURNING member").first,
                  let member = try? MemberID(bytes: try row.decode(Data.self)) else {
                throw ServerError.badRequest("No device with id \(id.hex).")
            }
            try db.run("""
                UPDATE invite SET voided = 1 WHERE used = 0 AND voided = 0
                AND issuer_token IN (SELECT token_hash FROM credential WHERE device = \(key))
                """)
            try db.run("UPDATE credential SET revoked = 1 WHERE device = \(key)")
            try Self.notifyRevocation(of: member, db)
        }
    }

    public func revokeMember(_ member: MemberID) async throws -> MemberRevocation {
        try await write { db in
            let key = Data(member.bytes)
            guard try !db.run("SELECT 1 FROM member WHERE id = \(key)").isEmpty else { throw ServerError.badRequest("No member with id \(member.hex).") }
            let codes = try db.run("""
                UPDATE invite SET voided = 1 WHERE used = 0 AND voided = 0
                AND (member = \(key) OR issuer_token IN (SELECT token_hash FROM credential WHERE member = \(key))) RETURNING 1
                """).count
            let devices = try db.run("UPDATE device SET revoked = 1 WHERE member = \(key) AND revoked = 0 RETURNING 1").count
            let tokens = try db.run("UPDATE credential SET revoked = 1 WHERE member = \(key) AND revoked = 0 RETURNING 1").count
            // Their dashboard sign-in goes too: sessions, password and unused codes.
            try db.run("DELETE FROM dashboard_session WHERE member = \(key)")
            try db.run("DELETE FROM dashboard_password WHERE member = \(key)")
            try db.run("DELETE FROM sign_in_code WHERE member = \(key)")
            try Self.notifyRevocation(of: member, db)
            return MemberRevocation(devices: devices, tokens: tokens, codes: codes)
        }
    }

    public func rotateStaffToken(member: MemberID?, nowMillis: UInt64) async throws -> (member: MemberID, token: String) {
        let token = Secrets.newToken()
        let chosen: MemberID = try await write { db in
            let holders = try db.run("""
                SELECT m.id FROM member m JOIN credential c ON c.member = m.id
                WHERE m.role = 'staff' AND c.device IS NULL GROUP BY m.id, m.created_at ORDER BY m.created_at
                """).compactMap { try? MemberID(bytes: try $0.decode(Data.self)) }
            let role = try member.flatMap { try db.run("SELECT role FROM member WHERE id = \(Data($0.bytes))").first?.decode(String.self) }
            let chosen = try Self.staffTokenHolder(named: member, roleOfNamed: role.flatMap(Role.init(rawValue:)), holders: holders)
            let key = Data(chosen.bytes)
            try db.run("""
                UPDATE invite SET voided = 1 WHERE used = 0 AND voided = 0
                AND issuer_token IN (SELECT token_hash FROM credential WHERE member = \(key) AND device IS NULL)
                """)
            try db.run("UPDATE credential SET revoked = 1 WHERE member = \(key) AND device IS NULL")
            try Self.notifyRevocation(of: chosen, db)
            try db.run("""
                INSERT INTO credential (token_hash, member, device, created_at) VALUES (\(Data(Secrets.hash(token))), \(key), NULL, \(Int64(nowMillis)))
                """)
            return chosen
        }
        return (chosen, token)
    }

    public func pendingCodes(nowMillis: UInt64) async throws -> [PendingCode] {
        try await snapshot { tx in
            try tx.db.run("""
                SELECT i.id, i.role, i.name, i.member, i.expires, c.member, d.id, d.name
                FROM invite i LEFT JOIN credential c ON c.token_hash = i.issuer_token LEFT JOIN device d ON d.id = c.device
                WHERE i.used = 0 AND i.voided = 0 AND i.expires > \(Int64(nowMillis)) ORDER BY i.created_at, i.id
                """).compactMap { row in
                let (id, role, name, member, expires, issuerMember, device, deviceName) =
                    try row.decode((Data, String, String, Data?, Int64, Data?, Data?, String?).self)
                guard let id = try? RecordID(bytes: id), let role = Role(rawValue: role) else { return nil }
                let issuer: PendingCode.Issuer
                if let device = device.flatMap({ try? RecordID(bytes: $0) }) {
                    issuer = .device(id: device, name: deviceName ?? "")
                } else if let member = issuerMember.flatMap({ try? MemberID(bytes: $0) }) {
                    issuer = .staffToken(member: member)
                } else {
                    issuer = .administrator
                }
                return PendingCode(
                    id: id, issuer: issuer, role: role, name: name, member: member.flatMap { try? MemberID(bytes: $0) },
                    expiresMillis: UInt64(max(0, expires)))
            }
        }
    }

    public func revokeCode(_ id: RecordID) async throws {
        try await write { db in
            guard try !db.run("UPDATE invite SET voided = 1 WHERE id = \(Data(id.bytes)) AND used = 0 AND voided = 0 RETURNING 1").isEmpty else {
                throw ServerError.badRequest("No unused code with id \(id.hex).")
            }
        }
    }

    /// Writes a consistent snapshot of the database to a new file (`pg_dump`, run by
    /// `PostgresBackup`), while the instances serve.
    public func backup(to path: String) async throws {
        try PostgresBackup.backup(location, to: path)
    }

    public func assignments() async throws -> [Assignment] {
        try await snapshot { tx in
            try tx.db.run("SELECT role, carer, member FROM assignment ORDER BY created_at, role, carer, member").compactMap { row in
                let (role, carer, member) = try row.decode((String, Data, Data).self)
                guard let kind = Assignment.Kind(rawValue: role), let carer = try? MemberID(bytes: carer), let member = try? MemberID(bytes: member) else {
                    return nil
                }
                return Assignment(kind, carer: carer, member: member)
            }
        }
    }

    public func setAssignment(_ assignment: Assignment, present: Bool, nowMillis: UInt64) async throws -> Bool {
        let (role, carer, member) = (assignment.kind.rawValue, Data(assignment.carer.bytes), Data(assignment.member.bytes))
        let now = Int64(nowMillis)
        return try await write { db in
            let changed =
                if present {
                    try !db.run("""
                        INSERT INTO assignment (role, carer, member, created_at) VALUES (\(role), \(carer), \(member), \(now))
                        ON CONFLICT DO NOTHING RETURNING 1
                        """).isEmpty
                } else {
                    try !db.run("DELETE FROM assignment WHERE role = \(role) AND carer = \(carer) AND member = \(member) RETURNING 1").isEmpty
                }
            if changed && assignment.kind == .mentor {
                if present {
                    // Unassigned and assigned again within one millisecond: the span closed
                    // then, [t, t), is empty; it is open again.
                    try db.run("""
                        INSERT INTO caseload_span (mentor, patient, since) VALUES (\(carer), \(member), \(now))
                        ON CONFLICT (mentor, patient, since) DO UPDATE SET until = NULL
                        """)
                } else {
                    try db.run("UPDATE caseload_span SET until = \(now) WHERE mentor = \(carer) AND patient = \(member) AND until IS NULL")
                }
            }
            return changed
        }
    }

    public func state(of channel: MemberID) async throws -> ReplicaState {
        try await snapshot { tx in
            var state = ReplicaState()
            for row in try tx.db.run("SELECT change FROM held WHERE channel = \(Data(channel.bytes))") {
                state.apply(try Change(canonicalBytes: Array(try row.decode(Data.self))))
            }
            for row in try tx.db.run("""
                SELECT c.record, c.field, c.context FROM covered c JOIN record r ON r.id = c.record WHERE r.owner = \(Data(channel.bytes))
                """) {
                let (record, field, context) = try row.decode((Data, String, Data).self)
                state.joinCovered(try CausalContext(encoded: Array(context)), record: try RecordID(bytes: record), field: try FieldName(field))
            }
            return state
        }
    }

    // MARK: The accounting of disclosures

    public func disclosures(of subject: MemberID?) async throws -> [Disclosure] {
        try await snapshot { tx in
            if let subject { return try tx.disclosures(of: subject, after: .min, limit: .max) }
            var all: [Disclosure] = []
            for row in try tx.db.run("SELECT DISTINCT subject FROM disclosure ORDER BY subject") {
                all += try tx.disclosures(of: try MemberID(bytes: try row.decode(Data.self)), after: .min, limit: .max)
            }
            return all
        }
    }

    public func chainStarts() async throws -> [MemberID: ChainStart] {
        try await snapshot { tx in
            var starts: [MemberID: ChainStart] = [:]
            for row in try tx.db.run("SELECT subject, seq, hash, at FROM disclosure_start") {
                let (subject, sequence, hash, at) = try row.decode((Data, Int64, Data, Int64).self)
                starts[try MemberID(bytes: subject)] = ChainStart(sequence: sequence, hash: hexString(hash), at: at)
            }
            return starts
        }
    }

    public func pruneDisclosures(recordedBefore cutoff: Int64) async throws -> Int {
        let subjects = try await snapshot { tx in
            try tx.db.run("SELECT DISTINCT subject FROM disclosure WHERE at < \(cutoff)").map { try $0.decode(Data.self) }
        }
        // One short transaction per chain, under the accounting's lock (pulls append meanwhile).
        var pruned = 0
        for subject in subjects {
            pruned += try await write { db in
                try db.run("SELECT pg_advisory_xact_lock(\(Self.accountingLockKey))")
                let kept = try db.run("SELECT min(seq) FROM disclosure WHERE subject = \(subject) AND at >= \(cutoff)").first?.decode(Int64?.self)
                guard let last = try db.run("""
                    SELECT seq, hash, at FROM disclosure WHERE subject = \(subject) AND seq < \(kept ?? .max) ORDER BY seq DESC LIMIT 1
                    """).first
                else { return 0 }
                let (sequence, hash, at) = try last.decode((Int64, Data, Int64).self)
                try db.run("""
                    INSERT INTO disclosure_start (subject, seq, hash, at) VALUES (\(subject), \(sequence), \(hash), \(at))
                    ON CONFLICT (subject) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at
                    """)
                return try db.run("DELETE FROM disclosure WHERE subject = \(subject) AND seq <= \(sequence) RETURNING 1").count
            }
        }
        return pruned
    }

    // MARK: Emergency access and the trail of administration

    public func addEmergencyAccess(_ access: EmergencyAccess) async throws {
        _ = try await write { db in
            try db.run("""
                INSERT INTO emergency_access (id, patient, staff, recipient, facility, reason, granted_by, granted_at, expires, revoked)
                VALUES (\(Data(access.id.bytes)), \(Data(access.patient.bytes)), \(Data(access.staff.bytes)), \(access.recipient),
                        \(access.facility), \(access.reason), \(access.grantedBy), \(access.grantedMillis), \(access.expiresMillis),
                        \(access.revokedMillis))
                """)
        }
    }

    public func revokeEmergencyAccess(_ id: RecordID, atMillis: Int64) async throws -> Bool {
        try await write { db in
            try !db.run("UPDATE emergency_access SET revoked = \(atMillis) WHERE id = \(Data(id.bytes)) AND revoked IS NULL RETURNING 1").isEmpty
        }
    }

    public func emergencyAccesses() async throws -> [EmergencyAccess] {
        try await snapshot { tx in
            try tx.db.run("\(unescaped: PostgresTransaction.emergencyColumns) ORDER BY granted_at, id").map(PostgresTransaction.emergencyAccess)
        }
    }

    public func appendAdminLog(_ entry: AdminLogEntry) async throws {
        _ = try await write { db in
            try db.run("""
                INSERT INTO admin_log (at, actor, host, action, detail)
                VALUES (\(entry.atMillis), \(entry.actor), \(entry.host), \(entry.action), \(entry.detail))
                """)
        }
    }

    public func adminLog() async throws -> [AdminLogEntry] {
        try await snapshot { tx in
            try tx.db.run("SELECT at, actor, host, action, detail FROM admin_log ORDER BY id").map { row in
                let (at, actor, host, action, detail) = try row.decode((Int64, String, String, String, String).self)
                return AdminLogEntry(atMillis: at, actor: actor, host: host, action: action, detail: detail)
            }
        }
    }
}

import Foundation
import PostgresNIO
public import TandemCore
public import TandemProtocol
public import TandemServer

/// The SQL under the sync rules (`PushRules`, `PullRules`, `AccountingRules`) on
/// PostgreSQL: one transaction of the store, on a `BlockingConnection` the caller has put in
/// a transaction (a push's, at `READ COMMITTED` under the rows it locks; a pull's, at
/// `REPEATABLE READ`, one snapshot). Statement for statement the embedded store's
/// (`SQLiteTransaction`), so the rules read the same answers from both.
public struct PostgresTransaction: PushWrites, PullReads, AccountingWrites {
    let db: BlockingConnection

    public init(_ db: BlockingConnection) { self.db = db }

    /// The first statement of every push transaction: pushes take turns, as under SQLite's
    /// one writer, from before they read what they merge with until they commit. Without
    /// it two pushes into one channel could read the same head and the same field state.
    /// (A finer lock, per channel, needs the channels before the first read; later.)
    public func beginPush() throws {
        try db.run("SELECT pg_advisory_xact_lock(\(Self.pushLockKey))")
    }

    /// The advisory lock pushes hold ("TandemW" in ASCII).
    static let pushLockKey: Int64 = 0x54_61_6E_64_65_6D_57

    // MARK: Reads

    public func epoch() throws -> String {
        guard let row = try db.run("SELECT epoch FROM center").first else {
            throw ServerError.unavailable("The server store is not initialized: run tandem admin init.")
        }
        return hexString(try row.decode(Data.self))
    }

    public func principal(tokenHash: [UInt8]) throws -> Principal {
        guard let row = try db.run("""
            SELECT c.member, c.device, c.revoked, m.role, d.replica, d.revoked
            FROM credential c JOIN member m ON m.id = c.member LEFT JOIN device d ON d.id = c.device
            WHERE c.token_hash = \(Data(tokenHash))
            """).first
        else { throw ServerError.unauthorized }
        let (member, device, revoked, role, replica, deviceRevoked) = try row.decode((Data, Data?, Int64, String, Data?, Int64?).self)
        if revoked != 0 || deviceRevoked == 1 { throw ServerError.revoked }
        guard let member = try? MemberID(bytes: member), let role = Role(rawValue: role) else { throw ServerError.unauthorized }
        return Principal(
            member: member, role: role, device: device.flatMap { try? RecordID(bytes: $0) }, replica: replica.flatMap { try? ReplicaID(bytes: $0) })
    }

    public func mark(of replica: ReplicaID) throws -> HybridTimestamp? {
        guard let row = try db.run("SELECT wall, counter FROM replica_mark WHERE replica = \(Data(replica.bytes))").first else { return nil }
        let (wall, counter) = try row.decode((Int64, Int64).self)
        return HybridTimestamp(wallMillis: UInt64(wall), counter: UInt16(clamping: counter))
    }

    public func marks(of replicas: Set<ReplicaID>) throws -> [ReplicaID: HybridTimestamp] {
        var marks: [ReplicaID: HybridTimestamp] = [:]
        for replica in replicas { marks[replica] = try mark(of: replica) }
        return marks
    }

    public func acceptedDigests(of ids: Set<ChangeID>) throws -> [ChangeID: [UInt8]] {
        var digests: [ChangeID: [UInt8]] = [:]
        for id in ids {
            let rows = try db.run("""
                SELECT digest FROM accepted
                WHERE replica = \(Data(id.replica.bytes)) AND wall = \(Int64(id.timestamp.wallMillis)) AND counter = \(Int64(id.timestamp.counter))
                """)
            digests[id] = try rows.first.map { Array(try $0.decode(Data.self)) }
        }
        return digests
    }

    public func activeMembers(of replicas: Set<ReplicaID>) throws -> [ReplicaID: MemberID] {
        var members: [ReplicaID: MemberID] = [:]
        for replica in replicas {
            let rows = try db.run("SELECT member FROM device WHERE replica = \(Data(replica.bytes)) AND revoked = 0")
            members[replica] = rows.first.flatMap { try? MemberID(bytes: try $0.decode(Data.self)) }
        }
        return members
    }

    public func repushEpoch(of device: RecordID) throws -> String? {
        try db.run("SELECT repush_epoch FROM device WHERE id = \(Data(device.bytes))").first.flatMap { try $0.decode(Data?.self) }.map(hexString)
    }

    public func roles(of members: Set<MemberID>) throws -> [MemberID: Role] {
        var roles: [MemberID: Role] = [:]
        for member in members {
            roles[member] = try db.run("SELECT role FROM member WHERE id = \(Data(member.bytes))").first.flatMap { Role(rawValue: try $0.decode(String.self)) }
        }
        return roles
    }

    public func patients(of mentor: MemberID) throws -> Set<MemberID> {
        try members(db.run("SELECT member FROM assignment WHERE role = 'mentor' AND carer = \(Data(mentor.bytes))"))
    }

    public func careTeam(of patient: MemberID) throws -> Set<MemberID> {
        let key = Data(patient.bytes)
        return try members(db.run("""
            SELECT carer FROM assignment WHERE role = 'mentor' AND member = \(key)
            UNION SELECT s.carer FROM assignment m JOIN assignment s ON s.role = 'supervisor' AND s.member = m.carer
            WHERE m.role = 'mentor' AND m.member = \(key)
            """))
    }

    public func carePatients(of member: MemberID) throws -> Set<MemberID> {
        let key = Data(member.bytes)
        return try members(db.run("""
            SELECT member FROM assignment WHERE role = 'mentor' AND carer = \(key)
            UNION SELECT m.member FROM assignment s JOIN assignment m ON m.role = 'mentor' AND m.carer = s.member
            WHERE s.role = 'supervisor' AND s.carer = \(key)
            """))
    }

    public func assigned(_ kind: Assignment.Kind, to carer: MemberID) throws -> Set<MemberID> {
        try members(db.run("SELECT member FROM assignment WHERE role = \(kind.rawValue) AND carer = \(Data(carer.bytes))"))
    }

    public func carers(_ kind: Assignment.Kind, of member: MemberID) throws -> Set<MemberID> {
        try members(db.run("SELECT carer FROM assignment WHERE role = \(kind.rawValue) AND member = \(Data(member.bytes))"))
    }

    /// The members the rows' first column names.
    private func members(_ rows: [PostgresRow]) throws -> Set<MemberID> {
        Set(rows.compactMap { try? MemberID(bytes: try $0.decode(Data.self)) })
    }

    public func names(of members: Set<MemberID>) throws -> [MemberID: (name: String, role: Role)] {
        var names: [MemberID: (name: String, role: Role)] = [:]
        for member in members {
            guard let row = try db.run("SELECT name, role FROM member WHERE id = \(Data(member.bytes))").first else { continue }
            let (name, role) = try row.decode((String, String).self)
            if let role = Role(rawValue: role) { names[member] = (name, role) }
        }
        return names
    }

    public func consentRevoked(_ id: RecordID) throws -> Int64? {
        try db.run("SELECT revoked FROM consent WHERE record = \(Data(id.bytes))").first.flatMap { try $0.decode(Int64?.self) }
    }

    public func notesShared(with patient: MemberID) throws -> [(note: RecordID, author: MemberID)] {
        // Only a mentor's notes: one written before the role rules by anyone else grants nothing.
        try db.run("""
            SELECT n.record, n.author FROM note n JOIN member m ON m.id = n.author
            WHERE n.patient = \(Data(patient.bytes)) AND n.shared = 1 AND m.role = 'mentor' ORDER BY n.record
            """).compactMap { row in
            let (note, author) = try row.decode((Data, Data).self)
            guard let note = try? RecordID(bytes: note), let author = try? MemberID(bytes: author) else { return nil }
            return (note, author)
        }
    }

    public func held(of record: RecordID, in channel: MemberID, after sequence: Int64, limit: Int) throws -> [HeldRow] {
        try heldRows(db.run("""
            SELECT h.seq, h.change, r.collection FROM record r JOIN held h ON h.record = r.number
            WHERE r.id = \(Data(record.bytes)) AND h.channel = \(Data(channel.bytes)) AND h.seq > \(sequence) ORDER BY h.seq LIMIT \(Int64(limit))
            """))
    }

    public func recordHead(_ record: RecordID) throws -> Int64 {
        try db.run("SELECT max(h.seq) FROM record r JOIN held h ON h.record = r.number WHERE r.id = \(Data(record.bytes))")
            .first.flatMap { try $0.decode(Int64?.self) } ?? 0
    }

    public func consents(to recipient: MemberID) throws -> [ConsentTerms] {
        try db.run("SELECT record, patient, scope, expires, revoked FROM consent WHERE recipient = \(Data(recipient.bytes)) ORDER BY record")
            .compactMap { row in
                let (id, patient, scope, expires, revoked) = try row.decode((Data, Data, String, Int64?, Int64?).self)
                guard let id = try? RecordID(bytes: id), let patient = try? MemberID(bytes: patient), let scope = ConsentScope(rawValue: scope) else {
                    return nil
                }
                return ConsentTerms(id: id, patient: patient, recipient: recipient, scope: scope, expiresMillis: expires, revokedMillis: revoked)
            }
    }

    public func records(_ ids: Set<RecordID>) throws -> [RecordID: StoredRecord] {
        var records: [RecordID: StoredRecord] = [:]
        for id in ids {
            guard let row = try db.run("SELECT number, owner, collection FROM record WHERE id = \(Data(id.bytes))").first else { continue }
            let (number, owner, collection) = try row.decode((Int64, Data, String).self)
            guard let owner = try? MemberID(bytes: owner) else { continue }
            records[id] = StoredRecord(number: number, owner: owner, collection: CollectionName(collection))
        }
        return records
    }

    public func heldChanges(of records: [StoredRecord]) throws -> [Change] {
        var changes: [Change] = []
        for record in records {
            // In the primary key's order, as SQLite reads them.
            for row in try db.run("""
                SELECT change FROM held WHERE record = \(record.number) ORDER BY field COLLATE "C", kind, wall, counter, replica
                """) {
                changes.append(try Change(canonicalBytes: Array(try row.decode(Data.self))))
            }
        }
        return changes
    }

    public func covered(of records: [RecordID]) throws -> [(record: RecordID, field: FieldName, context: CausalContext)] {
        var covered: [(record: RecordID, field: FieldName, context: CausalContext)] = []
        for record in records {
            for row in try db.run("SELECT field, context FROM covered WHERE record = \(Data(record.bytes)) ORDER BY field COLLATE \"C\"") {
                let (field, context) = try row.decode((String, Data).self)
                covered.append((record, try FieldName(field), try CausalContext(encoded: Array(context))))
            }
        }
        return covered
    }

    public func channelHead(_ channel: MemberID) throws -> Int64 {
        try db.run("SELECT seq FROM channel_head WHERE channel = \(Data(channel.bytes))").first.map { try $0.decode(Int64.self) } ?? 0
    }

    public func channelHeads(of channels: Set<MemberID>) throws -> [MemberID: Int64] {
        var heads: [MemberID: Int64] = [:]
        for channel in channels {
            if let row = try db.run("SELECT seq FROM channel_head WHERE channel = \(Data(channel.bytes))").first { heads[channel] = try row.decode(Int64.self) }
        }
        return heads
    }

    public func usage(of member: MemberID) throws -> Int64 {
        try db.run("SELECT bytes FROM member_usage WHERE member = \(Data(member.bytes))").first.map { try $0.decode(Int64.self) } ?? 0
    }

    public func held(in channel: MemberID, after sequence: Int64, limit: Int) throws -> [HeldRow] {
        try heldRows(db.run("""
            SELECT h.seq, h.change, r.collection FROM held h LEFT JOIN record r ON r.number = h.record
            WHERE h.channel = \(Data(channel.bytes)) AND h.seq > \(sequence) ORDER BY h.seq LIMIT \(Int64(limit))
            """))
    }

    private func heldRows(_ rows: [PostgresRow]) throws -> [HeldRow] {
        try rows.map { row in
            let (sequence, change, collection) = try row.decode((Int64, Data, String?).self)
            return HeldRow(sequence: sequence, change: Array(change), collection: collection.map(CollectionName.init))
        }
    }

    // MARK: The accounting of disclosures

    public func accountingHead(of subject: MemberID) throws -> (sequence: Int64, hash: [UInt8])? {
        try chainHeads(of: [subject])[subject]
    }

    public func chainHeads(of subjects: Set<MemberID>) throws -> [MemberID: (sequence: Int64, hash: [UInt8])] {
        var heads: [MemberID: (sequence: Int64, hash: [UInt8])] = [:]
        for subject in subjects {
            guard let row = try db.run("SELECT seq, hash FROM disclosure WHERE subject = \(Data(subject.bytes)) ORDER BY seq DESC LIMIT 1").first else {
                continue
            }
            let (sequence, hash) = try row.decode((Int64, Data).self)
            heads[subject] = (sequence, Array(hash))
        }
        return heads
    }

    public func disclosures(of subject: MemberID, after sequence: Int64, limit: Int) throws -> [Disclosure] {
        try db.run("""
            SELECT subject, seq, at, recipient, device, scope, consent, records, previous, hash FROM disclosure
            WHERE subject = \(Data(subject.bytes)) AND seq > \(sequence) ORDER BY seq LIMIT \(Int64(limit))
            """).map { row in
            let (subject, sequence, at, recipient, device, scope, consent, records, previous, hash) =
                try row.decode((Data, Int64, Int64, Data, Data?, String, Data?, Data, Data, Data).self)
            guard records.count % 16 == 0 else { throw ServerError.unavailable("A disclosure entry's records are damaged.") }
            let ids = Array(records)
            return Disclosure(
                subject: try MemberID(bytes: subject), sequence: sequence, atMillis: at, recipient: try MemberID(bytes: recipient),
                device: try device.map { try RecordID(bytes: $0) }, scope: scope, consent: try consent.map { try RecordID(bytes: $0) },
                records: try stride(from: 0, to: ids.count, by: 16).map { try RecordID(bytes: ids[$0..<($0 + 16)]) },
                previous: Array(previous), hash: Array(hash))
        }
    }

    public func chainStart(of subject: MemberID) throws -> ChainStart? {
        try db.run("SELECT seq, hash, at FROM disclosure_start WHERE subject = \(Data(subject.bytes))").first.map { row in
            let (sequence, hash, at) = try row.decode((Int64, Data, Int64).self)
            return ChainStart(sequence: sequence, hash: hexString(hash), at: at)
        }
    }

    public func deviceNames(of devices: Set<RecordID>) throws -> [RecordID: String] {
        var names: [RecordID: String] = [:]
        for device in devices {
            names[device] = try db.run("SELECT name FROM device WHERE id = \(Data(device.bytes))").first.map { try $0.decode(String.self) }
        }
        return names
    }

    public func append(_ disclosures: [Disclosure]) throws {
        for entry in disclosures {
            try db.run("""
                INSERT INTO disclosure (subject, seq, at, recipient, device, scope, consent, records, previous, hash)
                VALUES (\(Data(entry.subject.bytes)), \(entry.sequence), \(entry.atMillis), \(Data(entry.recipient.bytes)),
                        \(entry.device.map { Data($0.bytes) }), \(entry.scope), \(entry.consent.map { Data($0.bytes) }),
                        \(Data(entry.records.flatMap(\.bytes))), \(Data(entry.previous)), \(Data(entry.hash)))
                """)
        }
    }

    // MARK: Emergency access

    public func emergencyAccesses(staff: MemberID) throws -> [EmergencyAccess] {
        try db.run("\(unescaped: Self.emergencyColumns) WHERE staff = \(Data(staff.bytes))").map(Self.emergencyAccess)
    }

    public func emergencyAccesses(ids: Set<RecordID>) throws -> [RecordID: EmergencyAccess] {
        var accesses: [RecordID: EmergencyAccess] = [:]
        for id in ids {
            guard let row = try db.run("\(unescaped: Self.emergencyColumns) WHERE id = \(Data(id.bytes))").first else { continue }
            accesses[id] = try Self.emergencyAccess(row)
        }
        return accesses
    }

    static let emergencyColumns = """
        SELECT id, patient, staff, recipient, facility, reason, granted_by, granted_at, expires, revoked FROM emergency_access
        """

    static func emergencyAccess(_ row: PostgresRow) throws -> EmergencyAccess {
        let (id, patient, staff, recipient, facility, reason, grantedBy, granted, expires, revoked) =
            try row.decode((Data, Data, Data, String, String, String, String, Int64, Int64, Int64?).self)
        return EmergencyAccess(
            id: try RecordID(bytes: id), patient: try MemberID(bytes: patient), staff: try MemberID(bytes: staff), recipient: recipient,
            facility: facility, reason: reason, grantedBy: grantedBy, grantedMillis: granted, expiresMillis: expires, revokedMillis: revoked)
    }

    // MARK: Writes

    public func insertRecord(_ id: RecordID, owner: MemberID, collection: CollectionName) throws -> StoredRecord {
        let rows = try db.run("""
            INSERT INTO record (id, owner, collection) VALUES (\(Data(id.bytes)), \(Data(owner.bytes)), \(collection.rawValue)) RETURNING number
            """)
        guard let number = try rows.first.map({ try $0.decode(Int64.self) }) else {
            throw PostgresStoreError.statementFailed("a new record was given no number")
        }
        return StoredRecord(number: number, owner: owner, collection: collection)
    }

    public func deleteHeld(of record: StoredRecord, field: FieldName, kind: MergeKind) throws {
        try db.run("DELETE FROM held WHERE record = \(record.number) AND field = \(field.rawValue) AND kind = \(Int64(kind.rawValue))")
    }

    public func deleteValues(of record: StoredRecord) throws {
        try db.run("""
            DELETE FROM held WHERE record = \(record.number) AND kind NOT IN (\(Int64(MergeKind.create.rawValue)), \(Int64(MergeKind.tombstone.rawValue)))
            """)
    }

    public func deleteCovered(of record: RecordID) throws {
        try db.run("DELETE FROM covered WHERE record = \(Data(record.bytes))")
    }

    public func insertHeld(_ change: Change, of record: StoredRecord, field: FieldName, kind: MergeKind, sequence: Int64) throws {
        try db.run("""
            INSERT INTO held (record, field, kind, wall, counter, replica, seq, channel, change)
            VALUES (\(record.number), \(field.rawValue), \(Int64(kind.rawValue)), \(Int64(change.timestamp.wallMillis)),
                    \(Int64(change.timestamp.counter)), \(Data(change.replica.bytes)), \(sequence), \(Data(record.owner.bytes)),
                    \(Data(change.canonicalBytes)))
            """)
    }

    public func setCovered(_ context: CausalContext, of record: RecordID, field: FieldName) throws {
        try db.run("""
            INSERT INTO covered (record, field, context) VALUES (\(Data(record.bytes)), \(field.rawValue), \(Data(context.encoded)))
            ON CONFLICT (record, field) DO UPDATE SET context = excluded.context
            """)
    }

    /// Takes the commit feed's next position and stamps each advanced channel with it
    /// (pushes take turns, `beginPush`, so positions become visible in the order taken).
    public func advance(_ heads: [MemberID: Int64]) throws {
        guard let feed = try db.run("UPDATE sequence SET value = value + 1 RETURNING value").first.map({ try $0.decode(Int64.self) }) else {
            throw PostgresStoreError.statementFailed("the commit feed's sequence row is missing")
        }
        for (channel, seq) in heads {
            try db.run("""
                INSERT INTO channel_head (channel, seq, feed) VALUES (\(Data(channel.bytes)), \(seq), \(feed))
                ON CONFLICT (channel) DO UPDATE SET seq = excluded.seq, feed = excluded.feed
                """)
        }
    }

    public func setUsage(_ bytes: Int64, of member: MemberID) throws {
        try db.run("""
            INSERT INTO member_usage (member, bytes) VALUES (\(Data(member.bytes)), \(bytes))
            ON CONFLICT (member) DO UPDATE SET bytes = excluded.bytes
            """)
    }

    public func recordAccepted(_ id: ChangeID, digest: [UInt8]) throws {
        try db.run("""
            INSERT INTO accepted (replica, wall, counter, digest)
            VALUES (\(Data(id.replica.bytes)), \(Int64(id.timestamp.wallMillis)), \(Int64(id.timestamp.counter)), \(Data(digest)))
            """)
    }

    public func setMark(_ mark: HybridTimestamp, of replica: ReplicaID) throws {
        try db.run("""
            INSERT INTO replica_mark (replica, wall, counter) VALUES (\(Data(replica.bytes)), \(Int64(mark.wallMillis)), \(Int64(mark.counter)))
            ON CONFLICT (replica) DO UPDATE SET wall = excluded.wall, counter = excluded.counter
            """)
    }

    public func setConsent(_ terms: ConsentTerms) throws {
        try db.run("""
            INSERT INTO consent (record, patient, recipient, scope, expires, revoked)
            VALUES (\(Data(terms.id.bytes)), \(Data(terms.patient.bytes)), \(Data(terms.recipient.bytes)), \(terms.scope.rawValue),
                    \(terms.expiresMillis), \(terms.revokedMillis))
            ON CONFLICT (record) DO UPDATE SET patient = excluded.patient, recipient = excluded.recipient, scope = excluded.scope,
                expires = excluded.expires, revoked = excluded.revoked
            """)
    }

    public func deleteConsent(_ id: RecordID) throws {
        try db.run("DELETE FROM consent WHERE record = \(Data(id.bytes))")
    }

    public func setNote(_ id: RecordID, author: MemberID, patient: MemberID, shared: Bool) throws {
        try db.run("""
            INSERT INTO note (record, author, patient, shared) VALUES (\(Data(id.bytes)), \(Data(author.bytes)), \(Data(patient.bytes)), \(Int64(shared ? 1 : 0)))
            ON CONFLICT (record) DO UPDATE SET author = excluded.author, patient = excluded.patient, shared = excluded.shared
            """)
    }

    public func deleteNote(_ id: RecordID) throws {
        try db.run("DELETE FROM note WHERE record = \(Data(id.bytes))")
    }
}

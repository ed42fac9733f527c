import Foundation
import NIOCore
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
    /// The answers `readAhead` got for the batch under way.
    private let ahead = ReadAheadAnswers()

    public init(_ db: BlockingConnection) { self.db = db }

    /// Asks a batch's first reads in one round trip (they are otherwise a round trip each,
    /// and a push connection works through batches one after another). Each answer is
    /// given once, to the call that asks exactly the same; the channel head and the usage
    /// follow this transaction's own writes of them (`advance`, `setUsage`). A batch
    /// rolled back to its savepoint leaves nothing behind: the next batch reads ahead anew.
    public func readAhead(_ reads: PushReadAhead) throws {
        ahead.clear()
        let marks = Array(reads.marks), records = Array(reads.records), roles = Array(reads.roles)
        var queries: [PostgresQuery] = [Self.epochQuery, Self.channelHeadQuery(reads.channel), Self.usageQuery(reads.channel)]
        if !marks.isEmpty { queries.append(Self.marksQuery(marks)) }
        if !records.isEmpty { queries.append(Self.recordsQuery(records)) }
        if !roles.isEmpty { queries.append(Self.namesQuery(roles)) }
        var answers = try db.runAll(queries)[...]
        ahead.epoch = try Self.epoch(answers.removeFirst())
        ahead.heads[reads.channel] = try Self.channelHead(answers.removeFirst())
        ahead.usage[reads.channel] = try Self.usage(answers.removeFirst())
        ahead.marks = (reads.marks, marks.isEmpty ? [:] : try Self.marks(answers.removeFirst(), marks))
        ahead.records = (reads.records, records.isEmpty ? [:] : try Self.records(answers.removeFirst(), records))
        ahead.roles = (reads.roles, roles.isEmpty ? [:] : try Self.names(answers.removeFirst(), roles).mapValues(\.role))
    }

    /// The first statement of every push transaction: pushes take turns, as under SQLite's
    /// one writer, from before they read what they merge with until they commit. Without
    /// it two pushes into one channel could read the same head and the same field state.
    /// (A finer lock, per channel, needs the channels before the first read; later.)
    /// Sent without waiting: PostgreSQL runs the connection's statements in order, so the
    /// first read waits for the lock.
    public func beginPush() throws {
        db.send("SELECT pg_advisory_xact_lock(\(Self.pushLockKey))")
    }

    /// The advisory lock pushes hold ("TandemW" in ASCII).
    static let pushLockKey: Int64 = 0x54_61_6E_64_65_6D_57

    // MARK: Reads

    public func epoch() throws -> String {
        if let epoch = ahead.epoch { return epoch }
        return try Self.epoch(db.run(Self.epochQuery))
    }

    static let epochQuery: PostgresQuery = "SELECT epoch FROM center"

    public func sharingVersion() throws -> [UInt8] {
        guard let row = try db.run("SELECT token FROM sharing_version").first else {
            throw ServerError.unavailable("The server store is not initialized: run tandem admin init.")
        }
        return Array(try row.decode(Data.self))
    }

    static func epoch(_ rows: [PostgresRow]) throws -> String {
        guard let row = rows.first else { throw ServerError.unavailable("The server store is not initialized: run tandem admin init.") }
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
        if let answer = ahead.take(\.marks, for: replicas) { return answer }
        let keys = Array(replicas)
        return try Self.marks(db.run(Self.marksQuery(keys)), keys)
    }

    static func marksQuery(_ keys: [ReplicaID]) -> PostgresQuery {
        """
        SELECT k.i, m.wall, m.counter FROM unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(replica, i)
        JOIN replica_mark m ON m.replica = k.replica
        """
    }

    static func marks(_ rows: [PostgresRow], _ keys: [ReplicaID]) throws -> [ReplicaID: HybridTimestamp] {
        var marks: [ReplicaID: HybridTimestamp] = [:]
        for row in rows {
            let (index, wall, counter) = try row.decode((Int64, Int64, Int64).self)
            marks[keys[Int(index) - 1]] = HybridTimestamp(wallMillis: UInt64(wall), counter: UInt16(clamping: counter))
        }
        return marks
    }

    public func acceptedDigests(of ids: Set<ChangeID>) throws -> [ChangeID: [UInt8]] {
        // One statement for the whole batch: the ids travel as three arrays.
        let keys = Array(ids)
        var digests: [ChangeID: [UInt8]] = [:]
        for row in try db.run("""
            SELECT k.i, a.digest FROM unnest(
                \(keys.map { ByteBuffer(bytes: $0.replica.bytes) })::bytea[], \(keys.map { Int64($0.timestamp.wallMillis) })::bigint[],
                \(keys.map { Int64($0.timestamp.counter) })::bigint[]) WITH ORDINALITY AS k(replica, wall, counter, i)
            JOIN accepted a ON a.replica = k.replica AND a.wall = k.wall AND a.counter = k.counter
            """) {
            let (index, digest) = try row.decode((Int64, Data).self)
            digests[keys[Int(index) - 1]] = Array(digest)
        }
        return digests
    }

    public func activeMembers(of replicas: Set<ReplicaID>) throws -> [ReplicaID: MemberID] {
        let keys = Array(replicas)
        var members: [ReplicaID: MemberID] = [:]
        for row in try db.run("""
            SELECT k.i, d.member FROM unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(replica, i)
            JOIN device d ON d.replica = k.replica AND d.revoked = 0
            """) {
            let (index, member) = try row.decode((Int64, Data).self)
            members[keys[Int(index) - 1]] = try? MemberID(bytes: member)
        }
        return members
    }

    public func repushEpoch(of device: RecordID) throws -> String? {
        try db.run("SELECT repush_epoch FROM device WHERE id = \(Data(device.bytes))").first.flatMap { try $0.decode(Data?.self) }.map(hexString)
    }

    public func roles(of members: Set<MemberID>) throws -> [MemberID: Role] {
        if let answer = ahead.take(\.roles, for: members) { return answer }
        return try names(of: members).mapValues(\.role)
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
        let keys = Array(members)
        return try Self.names(db.run(Self.namesQuery(keys)), keys)
    }

    static func namesQuery(_ keys: [MemberID]) -> PostgresQuery {
        """
        SELECT k.i, m.name, m.role FROM unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(id, i)
        JOIN member m ON m.id = k.id
        """
    }

    static func names(_ rows: [PostgresRow], _ keys: [MemberID]) throws -> [MemberID: (name: String, role: Role)] {
        var names: [MemberID: (name: String, role: Role)] = [:]
        for row in rows {
            let (index, name, role) = try row.decode((Int64, String, String).self)
            if let role = Role(rawValue: role) { names[keys[Int(index) - 1]] = (name, role) }
        }
        return names
    }

    public func enrolledMillis(of members: Set<MemberID>) throws -> [MemberID: Int64] {
        let keys = Array(members)
        var enrolled: [MemberID: Int64] = [:]
        for row in try db.run("""
            SELECT k.i, m.created_at FROM unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(id, i)
            JOIN member m ON m.id = k.id
            """) {
            let (index, created) = try row.decode((Int64, Int64).self)
            enrolled[keys[Int(index) - 1]] = created
        }
        return enrolled
    }

    /// One row per patient, their entries' columns as arrays (an absent value as -1; every
    /// aggregate of a group reads its rows in the same order): a year of a thousand
    /// patients' entries crosses the connection as a thousand rows, not 365,000 rows
    /// decoded one by one (1.85 s of a 1.9 s dashboard page, docs/benchmarks.md).
    public func countedEntries(of patients: Set<MemberID>) throws -> [JournalMetrics] {
        let keys = patients.sorted()
        var entries: [JournalMetrics] = []
        for row in try db.run("""
            SELECT k.i, array_agg(j.day), array_agg(coalesce(j.mood, -1)), array_agg(coalesce(j.craving, -1)),
                   array_agg(coalesce(j.slept, -1)), array_agg(j.symptoms)
            FROM journal_metric j
            JOIN unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(id, i) ON j.patient = k.id
            GROUP BY k.i
            """) {
            let (index, days, moods, cravings, slept, symptoms) = try row.decode((Int64, [Int64], [Int64], [Int64], [Int64], [Int64]).self)
            guard days.count == moods.count, days.count == cravings.count, days.count == slept.count, days.count == symptoms.count else {
                throw PostgresStoreError.statementFailed("the journal index's arrays differ in length")
            }
            let patient = keys[Int(index) - 1]
            func value(_ number: Int64) -> Int? { number < 0 ? nil : Int(number) }
            for at in days.indices {
                entries.append(JournalMetrics(
                    patient: patient, day: Int(days[at]), mood: value(moods[at]), craving: value(cravings[at]), slept: value(slept[at]),
                    symptoms: symptoms[at]))
            }
        }
        return entries
    }

    public func noteDays(about patients: Set<MemberID>) throws -> [(patient: MemberID, day: Int)] {
        let keys = patients.sorted()
        return try db.run("""
            SELECT k.i, n.written FROM unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(id, i)
            JOIN note n ON n.patient = k.id ORDER BY k.i
            """).map { row in
            let (index, wall) = try row.decode((Int64, Int64).self)
            return (keys[Int(index) - 1], Int(wall / 86_400_000))
        }
    }

    public func caseloadSpans(of patients: Set<MemberID>) throws -> [CaseloadSpan] {
        let keys = patients.sorted()
        return try db.run("""
            SELECT k.i, c.mentor, c.since, c.until FROM caseload_span c
            JOIN unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(id, i) ON c.patient = k.id
            """).compactMap { row in
            let (index, mentor, since, until) = try row.decode((Int64, Data, Int64, Int64?).self)
            guard let mentor = try? MemberID(bytes: mentor) else { return nil }
            return CaseloadSpan(mentor: mentor, patient: keys[Int(index) - 1], since: since, until: until)
        }
    }

    public func mentors() throws -> [MemberID: String] {
        var mentors: [MemberID: String] = [:]
        for row in try db.run("SELECT id, name FROM member WHERE role = 'mentor'") {
            let (id, name) = try row.decode((Data, String).self)
            if let id = try? MemberID(bytes: id) { mentors[id] = name }
        }
        return mentors
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
        if let answer = ahead.take(\.records, for: ids) { return answer }
        let keys = Array(ids)
        return try Self.records(db.run(Self.recordsQuery(keys)), keys)
    }

    static func recordsQuery(_ keys: [RecordID]) -> PostgresQuery {
        """
        SELECT k.i, r.number, r.owner, r.collection FROM unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(id, i)
        JOIN record r ON r.id = k.id
        """
    }

    static func records(_ rows: [PostgresRow], _ keys: [RecordID]) throws -> [RecordID: StoredRecord] {
        var records: [RecordID: StoredRecord] = [:]
        for row in rows {
            let (index, number, owner, collection) = try row.decode((Int64, Int64, Data, String).self)
            guard let owner = try? MemberID(bytes: owner) else { continue }
            records[keys[Int(index) - 1]] = StoredRecord(number: number, owner: owner, collection: CollectionName(collection))
        }
        return records
    }

    public func heldChanges(of records: [StoredRecord]) throws -> [Change] {
        guard !records.isEmpty else { return [] }
        // Record by record in the order given, each in its primary key's order, as SQLite reads them.
        return try db.run("""
            SELECT h.change FROM unnest(\(records.map(\.number))::bigint[]) WITH ORDINALITY AS k(number, i)
            JOIN held h ON h.record = k.number ORDER BY k.i, h.field COLLATE "C", h.kind, h.wall, h.counter, h.replica
            """).map { row in try Change(canonicalBytes: Array(try row.decode(Data.self))) }
    }

    public func covered(of records: [RecordID]) throws -> [(record: RecordID, field: FieldName, context: CausalContext)] {
        guard !records.isEmpty else { return [] }
        return try db.run("""
            SELECT k.i, c.field, c.context FROM unnest(\(records.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(record, i)
            JOIN covered c ON c.record = k.record ORDER BY k.i, c.field COLLATE "C"
            """).map { row in
            let (index, field, context) = try row.decode((Int64, String, Data).self)
            return (records[Int(index) - 1], try FieldName(field), try CausalContext(encoded: Array(context)))
        }
    }

    public func channelHead(_ channel: MemberID) throws -> Int64 {
        if let head = ahead.heads[channel] { return head }
        return try Self.channelHead(db.run(Self.channelHeadQuery(channel)))
    }

    static func channelHeadQuery(_ channel: MemberID) -> PostgresQuery {
        "SELECT seq FROM channel_head WHERE channel = \(ByteBuffer(bytes: channel.bytes))"
    }

    static func channelHead(_ rows: [PostgresRow]) throws -> Int64 {
        try rows.first.map { try $0.decode(Int64.self) } ?? 0
    }

    public func channelHeads(of channels: Set<MemberID>) throws -> [MemberID: Int64] {
        let keys = Array(channels)
        var heads: [MemberID: Int64] = [:]
        for row in try db.run("""
            SELECT k.i, c.seq FROM unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(channel, i)
            JOIN channel_head c ON c.channel = k.channel
            """) {
            let (index, seq) = try row.decode((Int64, Int64).self)
            heads[keys[Int(index) - 1]] = seq
        }
        return heads
    }

    public func usage(of member: MemberID) throws -> Int64 {
        if let usage = ahead.usage[member] { return usage }
        return try Self.usage(db.run(Self.usageQuery(member)))
    }

    static func usageQuery(_ member: MemberID) -> PostgresQuery {
        "SELECT bytes FROM member_usage WHERE member = \(ByteBuffer(bytes: member.bytes))"
    }

    static func usage(_ rows: [PostgresRow]) throws -> Int64 {
        try rows.first.map { try $0.decode(Int64.self) } ?? 0
    }

    public func held(in channel: MemberID, after sequence: Int64, limit: Int) throws -> [HeldRow] {
        try heldRows(db.run("""
            SELECT h.seq, h.change, r.collection FROM held h LEFT JOIN record r ON r.number = h.record
            WHERE h.channel = \(Data(channel.bytes)) AND h.seq > \(sequence) ORDER BY h.seq LIMIT \(Int64(limit))
            """))
    }

    /// Every channel's page in one statement: a lateral read per channel, each the same
    /// index range `held(in:after:limit:)` reads.
    public func held(in pages: [(channel: MemberID, after: Int64, limit: Int)]) throws -> [[HeldRow]] {
        guard pages.count > 1 else { return try pages.map { try held(in: $0.channel, after: $0.after, limit: $0.limit) } }
        var answers = [[HeldRow]](repeating: [], count: pages.count)
        for row in try db.run("""
            SELECT k.i, p.seq, p.change, p.collection
            FROM unnest(\(pages.map { ByteBuffer(bytes: $0.channel.bytes) })::bytea[], \(pages.map(\.after))::bigint[],
                        \(pages.map { Int64($0.limit) })::bigint[])
                WITH ORDINALITY AS k(channel, after, n, i)
            CROSS JOIN LATERAL (
                SELECT h.seq, h.change, r.collection FROM held h LEFT JOIN record r ON r.number = h.record
                WHERE h.channel = k.channel AND h.seq > k.after ORDER BY h.seq LIMIT k.n
            ) p
            ORDER BY k.i, p.seq
            """) {
            let (index, sequence, change, collection) = try row.decode((Int64, Int64, Data, String?).self)
            answers[Int(index) - 1].append(HeldRow(sequence: sequence, change: Array(change), collection: collection.map(CollectionName.init)))
        }
        return answers
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
        let keys = Array(subjects)
        var heads: [MemberID: (sequence: Int64, hash: [UInt8])] = [:]
        for row in try db.run("""
            SELECT k.i, d.seq, d.hash FROM unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(subject, i)
            JOIN LATERAL (SELECT seq, hash FROM disclosure WHERE subject = k.subject ORDER BY seq DESC LIMIT 1) d ON true
            """) {
            let (index, sequence, hash) = try row.decode((Int64, Int64, Data).self)
            heads[keys[Int(index) - 1]] = (sequence, Array(hash))
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
        let keys = Array(devices)
        var names: [RecordID: String] = [:]
        for row in try db.run("""
            SELECT k.i, d.name FROM unnest(\(keys.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) WITH ORDINALITY AS k(id, i)
            JOIN device d ON d.id = k.id
            """) {
            let (index, name) = try row.decode((Int64, String).self)
            names[keys[Int(index) - 1]] = name
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
        for row in try db.run("\(unescaped: Self.emergencyColumns) WHERE id = ANY(\(ids.map { ByteBuffer(bytes: $0.bytes) })::bytea[])") {
            let access = try Self.emergencyAccess(row)
            accesses[access.id] = access
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
    // Those whose answer the rules do not read are sent without waiting (`BlockingConnection.send`).

    public func insertRecord(_ id: RecordID, owner: MemberID, collection: CollectionName) throws -> StoredRecord {
        let rows = db.buffer(RecordRows.self)
        if !rows.hasNumber {
            // Numbers come from the table's identity sequence, several at a time (one unused
            // is a gap in an order, nothing more); the row itself is sent with the push's others.
            rows.take(numbers: try db.run("""
                SELECT nextval(pg_get_serial_sequence('record', 'number')) FROM generate_series(1, \(Int64(rows.nextFetch)))
                """).map { try $0.decode(Int64.self) })
        }
        let record = StoredRecord(number: rows.nextNumber(), owner: owner, collection: collection)
        rows.add(id, record)
        return record
    }

    public func deleteHeld(of record: StoredRecord, field: FieldName, kind: MergeKind) throws {
        db.send("DELETE FROM held WHERE record = \(record.number) AND field = \(field.rawValue) AND kind = \(Int64(kind.rawValue))")
    }

    public func deleteValues(of record: StoredRecord) throws {
        db.send("""
            DELETE FROM held WHERE record = \(record.number) AND kind NOT IN (\(Int64(MergeKind.create.rawValue)), \(Int64(MergeKind.tombstone.rawValue)))
            """)
    }

    public func deleteCovered(of record: RecordID) throws {
        try db.send("DELETE FROM covered WHERE record = \(Data(record.bytes))")
    }

    public func insertHeld(_ change: Change, of record: StoredRecord, field: FieldName, kind: MergeKind, sequence: Int64) throws {
        db.buffer(HeldRows.self).add(change, of: record, field: field, kind: kind, sequence: sequence)
    }

    public func setCovered(_ context: CausalContext, of record: RecordID, field: FieldName) throws {
        db.buffer(CoveredRows.self).set(context, of: record, field: field)
    }

    /// Takes the commit feed's next position and stamps each advanced channel with it
    /// (pushes take turns, `beginPush`, so positions become visible in the order taken).
    /// Both statements are sent without waiting: the heads take the feed's new value in SQL.
    public func advance(_ heads: [MemberID: Int64]) throws {
        let channels = Array(heads.keys)
        db.send("UPDATE sequence SET value = value + 1")
        db.send("""
            INSERT INTO channel_head (channel, seq, feed)
            SELECT k.channel, k.seq, (SELECT value FROM sequence) FROM unnest(
                \(channels.map { ByteBuffer(bytes: $0.bytes) })::bytea[], \(channels.map { heads[$0]! })::bigint[]) AS k(channel, seq)
            ON CONFLICT (channel) DO UPDATE SET seq = excluded.seq, feed = excluded.feed
            """)
        for (channel, seq) in heads { ahead.heads[channel] = seq }
    }

    public func setUsage(_ bytes: Int64, of member: MemberID) throws {
        ahead.usage[member] = bytes
        try db.send("""
            INSERT INTO member_usage (member, bytes) VALUES (\(Data(member.bytes)), \(bytes))
            ON CONFLICT (member) DO UPDATE SET bytes = excluded.bytes
            """)
    }

    public func recordAccepted(_ id: ChangeID, digest: [UInt8]) throws {
        db.buffer(AcceptedRows.self).add(id, digest: digest)
    }

    public func setMark(_ mark: HybridTimestamp, of replica: ReplicaID) throws {
        try db.send("""
            INSERT INTO replica_mark (replica, wall, counter) VALUES (\(Data(replica.bytes)), \(Int64(mark.wallMillis)), \(Int64(mark.counter)))
            ON CONFLICT (replica) DO UPDATE SET wall = excluded.wall, counter = excluded.counter
            """)
    }

    public func setConsent(_ terms: ConsentTerms) throws {
        try db.send("""
            INSERT INTO consent (record, patient, recipient, scope, expires, revoked)
            VALUES (\(Data(terms.id.bytes)), \(Data(terms.patient.bytes)), \(Data(terms.recipient.bytes)), \(terms.scope.rawValue),
                    \(terms.expiresMillis), \(terms.revokedMillis))
            ON CONFLICT (record) DO UPDATE SET patient = excluded.patient, recipient = excluded.recipient, scope = excluded.scope,
                expires = excluded.expires, revoked = excluded.revoked
            """)
    }

    public func deleteConsent(_ id: RecordID) throws {
        try db.send("DELETE FROM consent WHERE record = \(Data(id.bytes))")
    }

    public func setNote(_ id: RecordID, author: MemberID, patient: MemberID, shared: Bool, writtenMillis: Int64) throws {
        try db.send("""
            INSERT INTO note (record, author, patient, shared, written)
            VALUES (\(Data(id.bytes)), \(Data(author.bytes)), \(Data(patient.bytes)), \(Int64(shared ? 1 : 0)), \(writtenMillis))
            ON CONFLICT (record) DO UPDATE SET author = excluded.author, patient = excluded.patient, shared = excluded.shared,
                written = excluded.written
            """)
    }

    public func deleteNote(_ id: RecordID) throws {
        try db.send("DELETE FROM note WHERE record = \(Data(id.bytes))")
    }

    public func setJournalMetrics(_ metrics: JournalMetrics, of record: StoredRecord) throws {
        try db.send("""
            INSERT INTO journal_metric (number, patient, day, mood, craving, slept, symptoms)
            VALUES (\(record.number), \(Data(metrics.patient.bytes)), \(Int64(metrics.day)), \(metrics.mood.map(Int64.init)),
                    \(metrics.craving.map(Int64.init)), \(metrics.slept.map(Int64.init)), \(metrics.symptoms))
            ON CONFLICT (number) DO UPDATE SET patient = excluded.patient, day = excluded.day, mood = excluded.mood,
                craving = excluded.craving, slept = excluded.slept, symptoms = excluded.symptoms
            """)
    }

    public func deleteJournalMetrics(of record: StoredRecord) throws {
        db.send("DELETE FROM journal_metric WHERE number = \(record.number)")
    }
}

/// A push's held changes, inserted as one statement.
final class HeldRows: BufferedRows {
    private var record: [Int64] = [], field: [String] = [], kind: [Int64] = [], wall: [Int64] = [], counter: [Int64] = []
    private var replica: [ByteBuffer] = [], seq: [Int64] = [], channel: [ByteBuffer] = [], change: [ByteBuffer] = []

    init() {}

    var isEmpty: Bool { record.isEmpty }

    func add(_ change: Change, of record: StoredRecord, field: FieldName, kind: MergeKind, sequence: Int64) {
        self.record.append(record.number)
        self.field.append(field.rawValue)
        self.kind.append(Int64(kind.rawValue))
        wall.append(Int64(change.timestamp.wallMillis))
        counter.append(Int64(change.timestamp.counter))
        replica.append(ByteBuffer(bytes: change.replica.bytes))
        seq.append(sequence)
        channel.append(ByteBuffer(bytes: record.owner.bytes))
        self.change.append(ByteBuffer(bytes: change.canonicalBytes))
    }

    func takeStatement() -> PostgresQuery {
        defer {
            (record, field, kind, wall, counter, seq) = ([], [], [], [], [], [])
            (replica, channel, change) = ([], [], [])
        }
        return """
            INSERT INTO held (record, field, kind, wall, counter, replica, seq, channel, change)
            SELECT * FROM unnest(\(record)::bigint[], \(field)::text[], \(kind)::bigint[], \(wall)::bigint[], \(counter)::bigint[],
                                 \(replica)::bytea[], \(seq)::bigint[], \(channel)::bytea[], \(change)::bytea[])
            """
    }
}

/// The ids and digests of a push's accepted changes, inserted as one statement.
final class AcceptedRows: BufferedRows {
    private var replica: [ByteBuffer] = [], wall: [Int64] = [], counter: [Int64] = [], digest: [ByteBuffer] = []

    init() {}

    var isEmpty: Bool { replica.isEmpty }

    func add(_ id: ChangeID, digest: [UInt8]) {
        replica.append(ByteBuffer(bytes: id.replica.bytes))
        wall.append(Int64(id.timestamp.wallMillis))
        counter.append(Int64(id.timestamp.counter))
        self.digest.append(ByteBuffer(bytes: digest))
    }

    func takeStatement() -> PostgresQuery {
        defer { (replica, wall, counter, digest) = ([], [], [], []) }
        return """
            INSERT INTO accepted (replica, wall, counter, digest)
            SELECT * FROM unnest(\(replica)::bytea[], \(wall)::bigint[], \(counter)::bigint[], \(digest)::bytea[])
            """
    }
}

/// The causal contexts a push keeps, as one statement: the last one set for a field wins,
/// as one `INSERT … ON CONFLICT DO UPDATE` per context would leave it.
final class CoveredRows: BufferedRows {
    private struct Key: Hashable {
        var record: RecordID
        var field: FieldName
    }
    private var order: [Key] = []
    private var contexts: [Key: CausalContext] = [:]

    init() {}

    var isEmpty: Bool { order.isEmpty }

    func set(_ context: CausalContext, of record: RecordID, field: FieldName) {
        let key = Key(record: record, field: field)
        if contexts.updateValue(context, forKey: key) == nil { order.append(key) }
    }

    func takeStatement() -> PostgresQuery {
        defer { (order, contexts) = ([], [:]) }
        let records = order.map { ByteBuffer(bytes: $0.record.bytes) }, fields = order.map(\.field.rawValue)
        let encoded = order.map { ByteBuffer(bytes: contexts[$0]!.encoded) }
        return """
            INSERT INTO covered (record, field, context) SELECT * FROM unnest(\(records)::bytea[], \(fields)::text[], \(encoded)::bytea[])
            ON CONFLICT (record, field) DO UPDATE SET context = excluded.context
            """
    }
}

/// A push's new records, inserted as one statement, numbered ahead from the identity sequence.
final class RecordRows: BufferedRows {
    private var number: [Int64] = [], id: [ByteBuffer] = [], owner: [ByteBuffer] = [], collection: [String] = []
    /// Numbers taken from the sequence and not used yet (kept across this connection's transactions).
    private var numbers: [Int64] = []
    /// How many to take next: more each time a push needs more.
    private(set) var nextFetch = 16

    init() {}

    var isEmpty: Bool { number.isEmpty }
    var hasNumber: Bool { !numbers.isEmpty }

    func take(numbers taken: [Int64]) {
        numbers = taken.reversed()
        nextFetch = min(nextFetch * 4, 1_024)
    }

    func nextNumber() -> Int64 { numbers.removeLast() }

    func add(_ id: RecordID, _ record: StoredRecord) {
        number.append(record.number)
        self.id.append(ByteBuffer(bytes: id.bytes))
        owner.append(ByteBuffer(bytes: record.owner.bytes))
        collection.append(record.collection.rawValue)
    }

    func takeStatement() -> PostgresQuery {
        defer { (number, id, owner, collection) = ([], [], [], []) }
        return """
            INSERT INTO record (number, id, owner, collection) OVERRIDING SYSTEM VALUE
            SELECT * FROM unnest(\(number)::bigint[], \(id)::bytea[], \(owner)::bytea[], \(collection)::text[])
            """
    }
}

/// What `PostgresTransaction.readAhead` read for the batch under way (one thread uses it,
/// the one that holds the transaction).
final class ReadAheadAnswers: @unchecked Sendable {
    var epoch: String?
    var heads: [MemberID: Int64] = [:]
    var usage: [MemberID: Int64] = [:]
    var marks: (keys: Set<ReplicaID>, answer: [ReplicaID: HybridTimestamp])?
    var records: (keys: Set<RecordID>, answer: [RecordID: StoredRecord])?
    var roles: (keys: Set<MemberID>, answer: [MemberID: Role])?

    func clear() {
        (epoch, heads, usage) = (nil, [:], [:])
        (marks, records, roles) = (nil, nil, nil)
    }

    /// The answer read ahead for exactly `keys`, given once.
    func take<Key: Hashable, Answer>(_ slot: ReferenceWritableKeyPath<ReadAheadAnswers, (keys: Set<Key>, answer: Answer)?>, for keys: Set<Key>) -> Answer? {
        guard let found = self[keyPath: slot], found.keys == keys else { return nil }
        self[keyPath: slot] = nil
        return found.answer
    }
}

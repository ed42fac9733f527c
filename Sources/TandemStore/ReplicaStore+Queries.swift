public import Foundation
import GRDB
import TandemSQLite
public import TandemCore
import TandemProtocol

extension ReplicaStore {
    /// A journal entry as listed: its typed row, without free text.
    public struct JournalRow: Sendable, Equatable {
        public var id: RecordID
        public var at: String?
        public var mood: Int?
        public var craving: Int?
        public var quarterHoursSlept: Int?
        public var symptoms: [String]
        public var tags: Int
        /// How many text values are held: 2 or more is an open conflict.
        public var texts: Int
    }

    /// A mentor note as listed.
    public struct NoteRow: Sendable, Equatable {
        public var id: RecordID
        public var patient: MemberID
        public var date: String?
        public var shared: Bool
        public var followUps: Int
        public var texts: Int
    }

    /// One open text conflict: every value held, with where and when each was written.
    public struct Conflict: Sendable, Equatable {
        public var record: RecordID
        public var collection: CollectionName?
        public var field: FieldName
        public var values: [TextValue]
    }

    /// Journal entries in time order, optionally from a local date on: the member's own
    /// (nil), or those a subscription to `patient`'s channel brought.
    public func journal(since: LocalDate? = nil, patient: MemberID? = nil) throws -> [JournalRow] {
        do {
            return try queue.read { db in
                // A shared channel's records are those its subscriptions' keys name.
                let source = patient.map { "m-\($0.hex)-%" }
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, at, mood, craving, slept, symptoms, tags, texts FROM journal_entry
                        WHERE (? IS NULL OR local_date >= ?)
                        AND (CASE WHEN ? IS NULL THEN id NOT IN (SELECT record FROM record_source)
                             ELSE id IN (SELECT record FROM record_source WHERE key LIKE ?) END)
                        ORDER BY at_utc, id
                        """,
                    arguments: [since?.description, since?.description, source, source])
                return try rows.map { row in
                    JournalRow(
                        id: try RecordID(bytes: row["id"] as Data), at: row["at"], mood: row["mood"], craving: row["craving"],
                        quarterHoursSlept: row["slept"],
                        symptoms: (row["symptoms"] as String).split(separator: ",").map(String.init),
                        tags: row["tags"], texts: row["texts"])
                }
            }
        } catch {
            throw map(error)
        }
    }

    /// Mentor notes, by date, optionally about one patient.
    public func notes(patient: MemberID? = nil) throws -> [NoteRow] {
        do {
            return try queue.read { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, patient, date, shared, follow_ups, texts FROM mentor_note
                        WHERE ? IS NULL OR patient = ? ORDER BY date, id
                        """,
                    arguments: [patient.map { Data($0.bytes) }, patient.map { Data($0.bytes) }])
                return try rows.map { row in
                    NoteRow(
                        id: try RecordID(bytes: row["id"] as Data), patient: try MemberID(bytes: row["patient"] as Data),
                        date: row["date"], shared: row["shared"], followUps: row["follow_ups"], texts: row["texts"])
                }
            }
        } catch {
            throw map(error)
        }
    }

    /// The other members whose channels brought this record (empty: the member's own).
    public func sources(of record: RecordID) throws -> [MemberID] {
        do {
            return try queue.read { db in
                try String.fetchAll(db, sql: "SELECT key FROM record_source WHERE record = ?", arguments: [Data(record.bytes)])
                    .compactMap(SubscriptionKey.channel(of:))
            }
        } catch {
            throw map(error)
        }
    }

    /// A subscription this device holds (after its last pull), besides its own records.
    public struct HeldSubscription: Sendable, Equatable {
        public var key: String
        public var channel: MemberID
        public var projection: Projection?
        /// When it ends by itself, in the server's clock (ms since 1970).
        public var untilMillis: UInt64?
    }

    /// The subscriptions to other members' channels this device holds.
    public func subscriptions() throws -> [HeldSubscription] {
        do {
            return try queue.read { db in
                let until = Dictionary(
                    try Row.fetchAll(db, sql: "SELECT key, until FROM subscription_until").map { ($0["key"] as String, UInt64(max(0, $0["until"] as Int64))) },
                    uniquingKeysWith: min)
                return try String.fetchAll(db, sql: "SELECT key FROM sync_cursor ORDER BY key").compactMap { key in
                    guard let channel = SubscriptionKey.channel(of: key), let projection = SubscriptionKey.projection(of: key) else { return nil }
                    return HeldSubscription(key: key, channel: channel, projection: projection, untilMillis: until[key])
                }
            }
        } catch {
            throw map(error)
        }
    }

    /// The subscriptions this device holds, as a pull names them (`SubscriptionDigest`):
    /// every key it has a cursor for, with when it ends by itself. A pull answer leaves out
    /// the list when the server grants the same (PROTOCOL.md §9.4).
    public func heldSubscriptions() throws -> [(key: String, until: UInt64?)] {
        do {
            return try queue.read { db in
                let until = Dictionary(
                    try Row.fetchAll(db, sql: "SELECT key, until FROM subscription_until").map { ($0["key"] as String, UInt64(max(0, $0["until"] as Int64))) },
                    uniquingKeysWith: min)
                return try String.fetchAll(db, sql: "SELECT key FROM sync_cursor").map { ($0, until[$0]) }
            }
        } catch {
            throw map(error)
        }
    }

    /// Every consent this device holds (a patient's own), newest first.
    public func consents() throws -> [(consent: Consent, grantedMillis: UInt64)] {
        do {
            return try queue.read { db in
                let ids = try Data.fetchAll(db, sql: "SELECT id FROM consent").map { try RecordID(bytes: $0) }
                let state = try Self.load(ids, db)
                return ids.compactMap { id in
                    guard let record = state[id], let consent = Consent(record) else { return nil }
                    return (consent, record.create?.timestamp.wallMillis ?? 0)
                }.sorted { ($0.grantedMillis, $0.consent.id.hex) > ($1.grantedMillis, $1.consent.id.hex) }
            }
        } catch {
            throw map(error)
        }
    }

    /// The merged state of one record.
    public func record(_ id: RecordID) throws -> RecordState? {
        do { return try queue.read { try Self.load([id], $0)[id] } } catch { throw map(error) }
    }

    /// The collection of each of these records the store knows, in one read.
    public func collections(of ids: some Collection<RecordID>) throws -> [RecordID: CollectionName] {
        do {
            // Only each record's collection, not its whole state: a sync's summary asks this
            // of up to ten thousand records.
            return try queue.read { db in
                var result: [RecordID: CollectionName] = [:]
                for id in ids {
                    let key = id.bytes
                    try db.query("SELECT collection FROM record_state WHERE record = ? AND collection <> ''", { $0.blob(key) }) { row in
                        result[id] = CollectionName(row.text(0))
                    }
                }
                return result
            }
        } catch {
            throw map(error)
        }
    }

    /// Finds a record by its full id or a unique prefix of at least 4 hex digits.
    ///
    /// - Throws: `StoreError.unknownRecord` or `.ambiguousRecord`.
    public func resolve(_ text: String) throws -> RecordID {
        let prefix = text.lowercased()
        guard prefix.count >= 4, prefix.count <= 32, prefix.allSatisfy(\.isHexDigit) else { throw StoreError.unknownRecord(text) }
        if prefix.count == 32, let id = try? RecordID(hex: prefix) {
            guard try record(id)?.create != nil else { throw StoreError.unknownRecord(prefix) }
            return id
        }
        do {
            let matches = try queue.read { db in
                try Data.fetchAll(
                    db, sql: "SELECT record FROM record_state WHERE collection IS NOT NULL AND lower(hex(record)) LIKE ? || '%' LIMIT 2",
                    arguments: [prefix])
            }
            guard let first = matches.first else { throw StoreError.unknownRecord(prefix) }
            guard matches.count == 1 else { throw StoreError.ambiguousRecord(prefix) }
            return try RecordID(bytes: first)
        } catch {
            throw map(error)
        }
    }

    /// Every open text conflict.
    public func conflicts() throws -> [Conflict] {
        do {
            return try queue.read { db in
                let ids = try Data.fetchAll(db, sql: "SELECT record FROM record_state WHERE conflicts > 0 ORDER BY record").map { try RecordID(bytes: $0) }
                let states = try Self.load(ids, db)
                var result: [Conflict] = []
                for id in ids {
                    guard let state = states[id] else { continue }
                    for key in state.fields.keys.sorted(by: { $0.field.rawValue < $1.field.rawValue }) {
                        guard case .multiValue(let register)? = state.fields[key], register.frontier.count > 1 else { continue }
                        let values = register.frontier.compactMap { change -> TextValue? in
                            guard case .string(let text) = change.value else { return nil }
                            return TextValue(id: change.id, text: text)
                        }
                        result.append(Conflict(record: id, collection: state.collection, field: key.field, values: values))
                    }
                }
                return result
            }
        } catch {
            throw map(error)
        }
    }

    /// The whole merged state, for the canonical dump and tests.
    public func state() throws -> ReplicaState {
        do {
            return try queue.read { db in
                let ids = try Data.fetchAll(db, sql: "SELECT record FROM record_state").map { try RecordID(bytes: $0) }
                return try Self.load(ids, db)
            }
        } catch {
            throw map(error)
        }
    }

    /// The canonical dump of PROTOCOL.md §5.7.
    public func canonicalDump() throws -> [UInt8] { try state().canonicalDump() }
}

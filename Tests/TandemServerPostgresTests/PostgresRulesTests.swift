import Foundation
import GRDB
import TandemCore
import TandemProtocol
@testable import TandemServer
import TandemServerPostgres
import TandemStore
import TandemTestSupport
import Testing

/// One set of rules, two stores: the same pushes through `PushRules` and the same pulls
/// through `PullRules` give the same outcomes, refusals and snapshots on the embedded
/// SQLite store and on PostgreSQL (`PostgresTransaction`), from the same members and devices.
@Suite("PostgreSQL under the sync rules")
struct PostgresRulesTests {
    /// The rows administration made on SQLite, copied into PostgreSQL as SQL literals.
    static func copy(_ tables: [String], from sqlite: DatabaseQueue, to postgres: BlockingConnection) throws {
        for table in tables {
            let rows = try sqlite.read { db in try Row.fetchAll(db, sql: "SELECT * FROM \(table)") }
            for row in rows {
                let columns = row.columnNames.joined(separator: ", ")
                let values = row.databaseValues.map { value -> String in
                    switch value.storage {
                    case .null: "NULL"
                    case .int64(let number): "\(number)"
                    case .double(let number): "\(number)"
                    case .string(let text): "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
                    case .blob(let data): "'\\x" + hexString(data) + "'::bytea"
                    }
                }
                try postgres.execute("INSERT INTO \(table) (\(columns)) VALUES (\(values.joined(separator: ", ")))")
            }
        }
    }

    @Test(.enabled(if: TestCluster.url != nil))
    func pushesAndPulls_readAndWriteBothStoresAlike() async throws {
        let dir = try TemporaryDirectory("pg-rules")
        let sqlite = try SQLiteServerStorage(path: dir.path("center.sqlite"))
        let admin: any ServerAdministration = sqlite
        let clock = SystemWallClock()
        let now = clock.nowMillis()
        _ = try await admin.initialize(staffName: "Admin", nowMillis: now)

        /// A new member's first device; or, `linkedTo` one, another device of that member.
        func enroll(
            _ name: String, _ role: Role, linkedTo other: (store: ReplicaStore, principal: Principal, token: String)? = nil
        ) async throws -> (store: ReplicaStore, principal: Principal, token: String) {
            let code: String
            if let other {
                code = Secrets.newCode()
                try await sqlite.link(
                    other.principal, issuerToken: Secrets.hash(other.token), codeHash: Secrets.hashCode(code), nowMillis: now,
                    expiresMillis: now + 600_000, maxUnused: 5)
            } else {
                code = try await admin.invite(role: role, name: name, member: nil, nowMillis: now, validForMillis: 3_600_000)
            }
            let store = try ReplicaStore.create(at: dir.path("\(name).sqlite"), name: name, role: role, wallMillis: now)
            let token = Secrets.newToken()
            _ = try await sqlite.enroll(
                codeHash: Secrets.hashCode(code), replica: store.identity.replica, deviceName: name, tokenHash: Secrets.hash(token),
                expectedRole: nil, expectedMember: nil, nowMillis: now)
            return (store, try await sqlite.authenticate(tokenHash: Secrets.hash(token)), token)
        }
        let sam = try await enroll("Sam", .patient)
        let samsTablet = try await enroll("Sam's tablet", .patient, linkedTo: sam)
        let mia = try await enroll("Mia", .mentor)
        let max = try await enroll("Max", .mentor)
        _ = try await admin.assign(.mentor, carer: try await admin.member(named: "Mia"), member: try await admin.member(named: "Sam"), nowMillis: now)

        try await TestCluster.withDatabase { location in
            let postgres = try BlockingConnection.open(location)
            defer { postgres.close() }
            try PostgresSchema.migrate(postgres)
            try Self.copy(["center", "member", "device", "credential", "assignment"], from: try DatabaseQueue(path: dir.path("center.sqlite")), to: postgres)

            /// The same batch on both stores: the same outcome, or the same refusal.
            func push(_ changes: [Change], as principal: Principal) async throws {
                // The server's time now (a slow run, under ThreadSanitizer, takes minutes:
                // changes stamped then would be refused as from the future against `now`).
                let now = clock.nowMillis()
                let onSQLite: Result<PushOutcome, ServerError>
                do {
                    onSQLite = .success(try await sqlite.push(
                        changes, from: principal, repush: false, nowMillis: now, maxSkewMillis: 60_000, quotaBytes: 1 << 30))
                } catch let error as ServerError { onSQLite = .failure(error) }
                let request = PushRequest(
                    changes: changes, principal: principal, replica: try #require(principal.replica), repush: false, nowMillis: now,
                    maxSkewMillis: 60_000, quotaBytes: 1 << 30)
                let onPostgres: Result<PushOutcome, ServerError>
                do {
                    onPostgres = .success(try await offThePool { try postgres.transaction { db in
                        let transaction = PostgresTransaction(db)
                        try transaction.beginPush()
                        return try PushRules.apply(request, in: transaction)
                    } })
                } catch let error as ServerError { onPostgres = .failure(error) }
                #expect(onSQLite == onPostgres)
            }

            /// What each store's snapshot gives `principal` from zero; then the accounting of
            /// what it delivered, recorded on each store: the same chain entries.
            func pulls(_ principal: Principal, delivering: Bool = true) async throws {
                let policy = ConsentPolicy(clock: clock)
                let starts: @Sendable ([Grant], String, [Int64]) -> [Int64] = { grants, _, _ in grants.map { _ in 0 } }
                let onSQLite = try await sqlite.read { store in
                    try PullRules.read(for: principal, policy: policy, limit: 1_000, check: nil, starts: starts, in: store)
                }
                let onPostgres = try await offThePool {
                    try postgres.transaction(isolation: "REPEATABLE READ") { db in
                        try PullRules.read(for: principal, policy: policy, limit: 1_000, check: nil, starts: starts, in: PostgresTransaction(db))
                    }
                }
                #expect(onSQLite.grants == onPostgres.grants && onSQLite.epoch == onPostgres.epoch && onSQLite.heads == onPostgres.heads)
                // The same changes in each page. Their order within one push is the merge's
                // (a dictionary's, which differs between runs), not a contract.
                func contents(_ snapshot: PullSnapshot) -> [[[UInt8]]] {
                    snapshot.pages.map { $0.changes.map(\.canonicalBytes).sorted { $0.lexicographicallyPrecedes($1) } }
                }
                #expect(contents(onSQLite) == contents(onPostgres))
                #expect(onSQLite.pages.map(\.last) == onPostgres.pages.map(\.last) && onSQLite.pages.map(\.more) == onPostgres.pages.map(\.more))
                #expect(onSQLite.mark == onPostgres.mark && onSQLite.repushEpoch == onPostgres.repushEpoch)
                #expect(onSQLite.directory == onPostgres.directory && onSQLite.accounting == onPostgres.accounting)
                #expect(onSQLite.pages.contains { !$0.changes.isEmpty } == delivering, "the comparison compares something")
                let deliveries = AccountingRules.deliveries(of: onSQLite, to: principal)
                let millis = Int64(clock.nowMillis())
                let recordedOnSQLite = try await sqlite.account { try AccountingRules.record(deliveries, atMillis: millis, in: $0) }
                let recordedOnPostgres = try await offThePool {
                    try postgres.transaction { try AccountingRules.record(deliveries, atMillis: millis, in: PostgresTransaction($0)) }
                }
                #expect(recordedOnSQLite == recordedOnPostgres)
                for subject in Set(deliveries.map(\.subject)) {
                    let chainOnSQLite = try await sqlite.read { try $0.disclosures(of: subject, after: 0, limit: 100) }
                    let chainOnPostgres = try await offThePool {
                        try postgres.transaction { try PostgresTransaction($0).disclosures(of: subject, after: 0, limit: 100) }
                    }
                    #expect(!chainOnSQLite.isEmpty && chainOnSQLite == chainOnPostgres)
                }
            }

            // Sam writes three entries, grants Mia their metrics, then edits one entry.
            var entries: [Change] = []
            var first: RecordID? = nil
            for value in 0..<3 {
                var edit = JournalEdit()
                edit.mood = value
                edit.craving = 9 - value
                edit.text = "entry \(value)"
                let (id, changes) = try sam.store.write(try edit.recordEdit(), to: nil, clock: clock)
                first = first ?? id
                entries += changes
            }
            try await push(entries, as: sam.principal)
            let consent = try sam.store.write(
                ConsentEdit.grant(patient: sam.principal.member, recipient: mia.principal.member, scope: .metrics, expiresMillis: nil, purpose: "peer support"),
                to: nil, clock: clock).1
            try await push(consent, as: sam.principal)
            var change = JournalEdit()
            change.mood = 8
            change.text = "entry 0, later"
            try await push(try sam.store.write(try change.recordEdit(), to: try #require(first), clock: clock).1, as: sam.principal)
            // A replay is recognized on both.
            try await push(entries, as: sam.principal)
            // Mia's shared note about Sam; Max's note about Sam is refused (not assigned).
            var note = NoteEdit()
            note.patient = sam.principal.member
            note.text = "we talked"
            note.shared = true
            try await push(try mia.store.write(try note.recordEdit(), to: nil, clock: clock).1, as: mia.principal)
            try await push(try max.store.write(try note.recordEdit(), to: nil, clock: clock).1, as: max.principal)
            // A mentor's journal entry is refused on both.
            var foreign = JournalEdit()
            foreign.mood = 1
            try await push(try mia.store.write(try foreign.recordEdit(), to: nil, clock: clock).1, as: mia.principal)

            try await pulls(sam.principal)
            try await pulls(mia.principal)
            try await pulls(max.principal, delivering: false)

            // Then Sam deletes an entry and revokes the consent, and Mia unshares her note
            // and deletes it: tombstones, a revoked consent, a note no longer shared.
            try await push(try sam.store.write(RecordEdit.delete(.journal), to: try #require(first), clock: clock).1, as: sam.principal)
            try await push(try sam.store.write(ConsentEdit.revoke(atMillis: Int64(now)), to: try #require(consent.first?.record), clock: clock).1, as: sam.principal)
            let (noteID, noteChanges) = try mia.store.write(try note.recordEdit(), to: nil, clock: clock)
            var unshare = NoteEdit()
            unshare.shared = false
            try await push(noteChanges, as: mia.principal)
            try await push(try mia.store.write(try unshare.recordEdit(), to: noteID, clock: clock).1, as: mia.principal)
            try await pulls(sam.principal)
            try await pulls(mia.principal)
            try await push(try mia.store.write(RecordEdit.delete(.note), to: noteID, clock: clock).1, as: mia.principal)
            try await pulls(sam.principal)
            try await pulls(mia.principal)

            // Pushes into one channel on two connections at once take turns: every change
            // gets a number of its own, and the channel's head is the last of them.
            var batches: [[Change]] = []
            for value in 0..<40 {
                var edit = JournalEdit()
                edit.mood = value % 10
                // Each device's own batches in its own order (a replica pushes in order).
                batches.append(try (value % 2 == 0 ? sam : samsTablet).store.write(try edit.recordEdit(), to: nil, clock: clock).1)
            }
            let devices = [sam.principal, samsTablet.principal]
            let all = batches
            let channel = "'\\x" + hexString(sam.principal.member.bytes) + "'::bytea"
            let heldBefore = try postgres.texts("SELECT count(*)::text FROM held WHERE channel = \(channel)")
            let failures = Locked<[String]>([])
            let group = DispatchGroup()
            for half in 0..<2 {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    do {
                        let connection = try BlockingConnection.open(location)
                        defer { connection.close() }
                        for batch in stride(from: half, to: all.count, by: 2).map({ all[$0] }) {
                            let request = PushRequest(
                                changes: batch, principal: devices[half], replica: devices[half].replica!, repush: false, nowMillis: clock.nowMillis(),
                                maxSkewMillis: 60_000, quotaBytes: 1 << 30)
                            _ = try connection.transaction { db in
                                let transaction = PostgresTransaction(db)
                                try transaction.beginPush()
                                return try PushRules.apply(request, in: transaction)
                            }
                        }
                    } catch {
                        failures.withLock { $0.append(String(describing: error)) }
                    }
                }
            }
            await withCheckedContinuation { done in group.notify(queue: .global()) { done.resume() } }
            #expect(failures.withLock { $0 } == [])
            let numbers = try postgres.texts("SELECT count(*)::text || ' ' || count(DISTINCT seq)::text || ' ' || coalesce(max(seq), 0)::text FROM held WHERE channel = \(channel)")
            let head = try postgres.texts("SELECT seq::text FROM channel_head WHERE channel = \(channel)")
            let parts = try #require(numbers.first).split(separator: " ").compactMap { Int($0) }
            let before = try #require(heldBefore.first.flatMap { Int($0) })
            #expect(parts.count == 3 && parts[0] == before + all.reduce(0) { $0 + $1.count }, "every change is held")
            #expect(parts.count == 3 && parts[0] == parts[1], "no number is given twice")
            #expect(parts.count == 3 && head == [String(parts[2])], "the head is the last number")
        }
    }
}

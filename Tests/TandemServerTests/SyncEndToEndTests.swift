import Foundation
import GRDB
import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import TandemWorkload
import Testing

/// The real server process on a loopback port and real devices (the `tandem` executable
/// on their own homes): changes written offline on one device reach the others.
///
/// On SQLite only: whole `tandem` processes on a file store; the same rules run on PostgreSQL through the shared bodies and `RestoreTests`, which run `tandem serve --postgres`.
@Suite("Sync end to end", .serialized)
struct SyncEndToEndTests {
    struct Device {
        let name: String
        let home: String

        @discardableResult
        func run(_ arguments: [String], stdin: String? = nil) async throws -> String {
            let result = try await TandemExecutable.run(arguments, home: home, stdin: stdin)
            #expect(result.status == 0, "\(name): tandem \(arguments.joined(separator: " ")): \(result.stderr)")
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func dump() throws -> [UInt8] { try ReplicaStore.open(at: home + "/replica.sqlite").canonicalDump() }
        func store() throws -> ReplicaStore { try ReplicaStore.open(at: home + "/replica.sqlite") }
    }

    struct Center {
        let dir: TemporaryDirectory
        let server: LiveServer
        var db: String { server.dbPath }

        init() async throws {
            dir = try TemporaryDirectory("tandem-e2e")
            let db = dir.path("center.sqlite")
            let initialized = try await TandemExecutable.run(["admin", "init", "--db", db])
            #expect(initialized.status == 0, "\(initialized.stderr)")
            server = try await LiveServer(dbPath: db)
        }

        func invite(_ role: String, _ name: String) async throws -> String {
            let result = try await TandemExecutable.run(["admin", "invite", "--db", db, "--role", role, "--name", name])
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func device(_ name: String) -> Device { Device(name: name, home: dir.path(name)) }

        func enroll(_ device: Device, code: String) async throws {
            try await device.run(["enroll", "--server", server.url, "--code", code, "--device", device.name])
        }
    }

    @Test func threePatientDevicesAndAMentor_convergeThroughTheServer() async throws {
        let center = try await Center()
        // The phone was used offline before enrolling: that work is kept and synced.
        let phone = center.device("phone")
        try await phone.run(["init", "--name", "Sam", "--role", "patient"])
        let early = try await phone.run(["journal", "add", "--mood", "2", "--craving", "9", "--symptom", "nausea", "--text", "Before I enrolled."])
        try await center.enroll(phone, code: try await center.invite("patient", "Sam"))
        // Said in entries, not fields; and the first sync does not bring the entry back.
        let firstSync = try await phone.run(["sync"])
        #expect(firstSync.contains("Synced: 1 entry sent, nothing received, nothing waiting."), "\(firstSync)")
        let laptop = center.device("laptop")
        try await center.enroll(laptop, code: try await phone.run(["device", "link"]))
        let tablet = center.device("tablet")
        try await center.enroll(tablet, code: try await phone.run(["device", "link"]))
        let mentor = center.device("mentor")
        try await center.enroll(mentor, code: try await center.invite("mentor", "Alex"))
        _ = try await TandemExecutable.run(["admin", "assign", "--mentor", "Alex", "--patient", "Sam", "--db", center.db])
        let patients = [phone, laptop, tablet]
        let laptopSync = try await laptop.run(["sync"])
        #expect(laptopSync.contains("nothing sent, 1 entry received"), "\(laptopSync)")
        for device in patients { try await device.run(["sync"]) }
        #expect(try await laptop.run(["journal", "show", early, "--json"]).contains("Before I enrolled."))

        // Offline on every device: concurrent edits of one entry, symptoms added and
        // removed, a delete, and a text edited on two devices at once.
        try await phone.run(["journal", "edit", early, "--mood", "3", "--remove-symptom", "nausea"])
        try await laptop.run(["journal", "edit", early, "--mood", "4", "--add-symptom", "tremor", "--text", "Laptop's version."])
        try await tablet.run(["journal", "edit", early, "--add-symptom", "chills", "--text", "Tablet's version."])
        let doomed = try await tablet.run(["journal", "add", "--mood", "5", "--craving", "5"])
        let patientMember = try #require(try phone.store().binding()?.member)
        try await mentor.run(["note", "add", "--patient", patientMember.hex, "--text", "First session went well."])
        try await tablet.run(["sync"])
        try await tablet.run(["journal", "delete", doomed])

        var rng = SeededGenerator(seed: 5)
        for _ in 0..<3 {
            for device in (patients + [mentor]).shuffled(using: &rng) { try await device.run(["sync"]) }
            try await phone.run(["journal", "add", "--mood", "\(Int.random(in: 0...10, using: &rng))", "--craving", "1"])
        }
        for device in patients + [mentor] { try await device.run(["sync"]) }
        for device in patients + [mentor] { try await device.run(["sync"]) }

        // The patient's devices agree with each other and with the server's view.
        let storage = try SQLiteServerStorage(path: center.db)
        let serverView = try storage.state(of: patientMember).canonicalDump()
        for device in patients { #expect(try device.dump() == serverView, "\(device.name) differs from the server") }
        let mentorMember = try #require(try mentor.store().binding()?.member)
        #expect(try mentor.dump() == storage.state(of: mentorMember).canonicalDump())
        // Neither holds the other's records.
        let mentorRecords = Set(try mentor.store().state().records.keys)
        let patientRecords = Set(try phone.store().state().records.keys)
        #expect(mentorRecords.isDisjoint(with: patientRecords))
        #expect(try phone.store().notes().isEmpty)
        // The delete stuck; the text conflict shows on every patient device.
        for device in patients {
            let shown = try await TandemExecutable.run(["journal", "show", doomed], home: device.home)
            #expect(shown.status != 0, "\(device.name) resurrected a delete")
            #expect(try await device.run(["conflicts", "--json"]).contains("Tablet's version."), "\(device.name)")
        }
        let state = try phone.store().record(try RecordID(hex: early))
        let entry = try #require(state.flatMap(JournalEntry.init))
        #expect(entry.symptoms == [.tremor, .chills])
        #expect(entry.text.count == 2)

        // Resolved once, on one device: gone everywhere.
        try await laptop.run(["conflicts", "resolve", early, "--text", "Both, merged by hand."])
        try await laptop.run(["sync"])
        for device in patients { try await device.run(["sync"]) }
        for device in patients {
            let open = try await device.run(["conflicts", "--json"]).filter { !$0.isWhitespace }
            #expect(open == "[]", "\(device.name)")
            #expect(try await device.run(["journal", "show", early]).contains("Both, merged by hand."))
        }
        #expect(try phone.dump() == storage.state(of: patientMember).canonicalDump())
        // Staff revoke the tablet: its next sync is refused plainly; the member sees it.
        let devices = try await TandemExecutable.run(["admin", "devices", "--db", center.db]).stdout
        let tabletLine = try #require(devices.split(separator: "\n").first { $0.contains(" tablet ") })
        let tabletID = String(tabletLine.prefix(32))
        #expect(try await TandemExecutable.run(["admin", "revoke-device", tabletID, "--db", center.db]).status == 0)
        let refused = try await TandemExecutable.run(["sync"], home: tablet.home)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("revoked by the center"))
        let listed = try await phone.run(["device", "list"])
        #expect(listed.contains(tabletID) && listed.contains("revoked"))
        // The device you are on is marked; the tablet is not.
        let rows = listed.split(separator: "\n").dropFirst()
        #expect(rows.filter { $0.hasPrefix("*") }.count == 1, "\(listed)")
        #expect(rows.first { $0.contains(tabletID) }?.hasPrefix("*") == false)

        let status = try await phone.run(["status"])
        #expect(status.contains("Waiting:     0 change(s)") && status.contains(center.server.url) && status.contains("Conflicts:   0"))
    }

    @Test func enrollment_refusesUsedCodes_andTokensOverPlainHTTPToOtherHosts() async throws {
        let center = try await Center()
        let code = try await center.invite("patient", "Kim")
        let first = center.device("first")
        try await center.enroll(first, code: code)
        let again = try await TandemExecutable.run(["enroll", "--server", center.server.url, "--code", code], home: center.dir.path("second"))
        #expect(again.status != 0)
        #expect(again.stderr.contains("unknown, used or expired"))
        let insecure = try await TandemExecutable.run(
            ["enroll", "--server", "http://192.0.2.10:8080", "--code", try await center.invite("patient", "Lee")], home: center.dir.path("third"))
        #expect(insecure.stderr.contains("Refusing to send a token over plain HTTP"))
        // A code for another role is refused and stays usable.
        let patientCode = try await center.invite("patient", "Noa")
        let mentorHome = center.device("mentor-home")
        try await mentorHome.run(["init", "--name", "Noa", "--role", "mentor"])
        let wrongRole = try await TandemExecutable.run(["enroll", "--server", center.server.url, "--code", patientCode], home: mentorHome.home)
        #expect(wrongRole.status != 0)
        #expect(wrongRole.stderr.contains("made for a mentor"))
        try await center.enroll(center.device("patient-home"), code: patientCode)
        // A home bound to one member cannot be enrolled as another.
        let otherMember = try await TandemExecutable.run(["enroll", "--server", center.server.url, "--code", try await center.invite("patient", "Zed")], home: first.home)
        #expect(otherMember.stderr.contains("enrolled as another member"))

        let notEnrolled = center.device("offline")
        try await notEnrolled.run(["init", "--name", "Ola", "--role", "patient"])
        let sync = try await TandemExecutable.run(["sync"], home: notEnrolled.home)
        #expect(sync.stderr.contains("not enrolled"))
    }

    /// Whether `text` is in any file of a home (the store, its WAL, anything else).
    static func homeHolds(_ home: String, _ text: String) throws -> Bool {
        try FileManager.default.contentsOfDirectory(atPath: home).contains { name in
            guard let bytes = FileManager.default.contents(atPath: home + "/" + name) else { return false }
            return bytes.range(of: Data(text.utf8)) != nil
        }
    }

    struct SharedJournal: Decodable {
        struct Row: Decodable { var id: String; var mood: Int? }
        var patient: String
        var name: String?
        var scopes: [String]
        var entries: [Row]
        var notice: String
    }

    struct PatientsListing: Decodable {
        struct Patient: Decodable { var name: String; var scope: String? }
        var patients: [Patient]
        var notice: String
    }

    @Test func aConsentGrantedOnThePatientsDevice_reachesTheMentor_andRevokingPurgesEveryFile() async throws {
        let center = try await Center()
        let phone = center.device("phone"), mentor = center.device("mentor")
        try await center.enroll(phone, code: try await center.invite("patient", "Sam"))
        try await center.enroll(mentor, code: try await center.invite("mentor", "Mia"))
        let assigned = try await TandemExecutable.run(["admin", "assign", "--mentor", "Mia", "--patient", "Sam", "--db", center.db])
        #expect(assigned.status == 0, "\(assigned.combined)")
        let planted = "PLANTED-e2e-consent-91c4"
        let entry = try await phone.run(["journal", "add", "--mood", "4", "--craving", "6", "--symptom", "tremor", "--text", planted])
        try await phone.run(["sync"])
        try await mentor.run(["sync"])
        // The patient's device knows its care team by name; the mentor's knows its patient.
        #expect(try await phone.run(["team"]).contains("Mia"))
        #expect(try await mentor.run(["team", "--json"]).contains("\"Sam\""))
        // An assignment alone shares nothing.
        let before = try JSONDecoder().decode(SharedJournal.self, from: Data(try await mentor.run(["journal", "list", "--patient", "Sam", "--json"]).utf8))
        #expect(before.entries.isEmpty && before.scopes.isEmpty)

        // Without --yes and off a terminal, nothing is granted.
        let unconfirmed = try await TandemExecutable.run(["consent", "grant", "--to", "Mia", "--scope", "journal"], home: phone.home)
        #expect(unconfirmed.status != 0 && unconfirmed.stdout.contains("your whole journal") && unconfirmed.stderr.contains("--yes"))
        #expect(try await phone.run(["consent", "list"]).contains("No consents"))
        let granted = try await phone.run(["consent", "grant", "--to", "mia", "--scope", "journal", "--purpose", "peer support", "--yes"])
        #expect(granted.contains("tandem consent revoke"), "\(granted)")
        let consent = String(try #require(granted.split(separator: "\n").first { $0.count == 32 }))
        #expect(try await phone.run(["consent", "list"]).contains("active"))
        try await phone.run(["sync"])
        try await mentor.run(["sync"])

        let shared = try JSONDecoder().decode(SharedJournal.self, from: Data(try await mentor.run(["journal", "list", "--patient", "Sam", "--json"]).utf8))
        #expect(shared.entries.map(\.id) == [entry] && shared.scopes == ["journal"] && shared.name == "Sam")
        #expect(shared.notice == "42 CFR part 2 prohibits unauthorized disclosure of these records.")
        let shown = try await mentor.run(["journal", "show", entry])
        #expect(shown.contains(planted) && shown.contains("Patient:   Sam (patient)") && shown.hasSuffix("prohibits unauthorized disclosure of these records."))
        let patients = try JSONDecoder().decode(PatientsListing.self, from: Data(try await mentor.run(["patients", "--json"]).utf8))
        #expect(patients.patients.map(\.name) == ["Sam"] && patients.patients.first?.scope == "journal" && !patients.notice.isEmpty)
        #expect(try Self.homeHolds(mentor.home, planted))
        // The patient's accounting: the next sync brings who received what, in plain words.
        try await phone.run(["sync"])
        let audit = try await phone.run(["audit"])
        #expect(audit.contains("Mia (mentor) received 1 entry, the whole journal, on ") && audit.contains("under your consent of"), "\(audit)")
        #expect(audit.contains("on 'mentor'"), "the recipient's device, by its name: \(audit)")
        #expect(!audit.contains(planted))
        #expect(try await phone.run(["audit", "verify"]).contains("The server's accounting holds: 1 entry"))
        // An administrator rewrites who received it: the patient's device notices.
        let queue = try DatabaseQueue(path: center.db)
        try await queue.write { db in try db.execute(sql: "UPDATE disclosure SET at = at + 1 WHERE seq = 1") }
        let tampered = try await TandemExecutable.run(["audit", "verify"], home: phone.home)
        #expect(tampered.status == 1 && tampered.stdout.contains("entry 1 was edited, removed or reordered"), "\(tampered.combined)")
        try await queue.write { db in try db.execute(sql: "UPDATE disclosure SET at = at - 1 WHERE seq = 1") }
        try queue.close()
        #expect(try await phone.run(["audit", "verify"]).contains("holds"))

        // What the patient shared is theirs: the mentor's CLI refuses to change it.
        let edit = try await TandemExecutable.run(["journal", "edit", entry, "--mood", "9"], home: mentor.home)
        #expect(edit.status != 0 && edit.stderr.contains("only they can change it"), "\(edit.combined)")
        #expect(try mentor.store().outbox().isEmpty)
        // The mentor's own journal is theirs alone: Sam's entry is not listed as the mentor's.
        #expect(try await mentor.run(["journal", "list", "--json"]) == "[]")

        let revoked = try await phone.run(["consent", "revoke", String(consent.prefix(8))])
        #expect(revoked.contains("Revoked"))
        try await phone.run(["sync"])
        try await mentor.run(["sync"])
        let after = try JSONDecoder().decode(SharedJournal.self, from: Data(try await mentor.run(["journal", "list", "--patient", "Sam", "--json"]).utf8))
        #expect(after.entries.isEmpty && after.scopes.isEmpty)
        #expect(try !Self.homeHolds(mentor.home, planted), "the planted text is gone from every file of the mentor's home")
        #expect(try await phone.run(["journal", "show", entry]).contains(planted))

        // Again with the mentor's device watching: the revoke reaches it as a live notice.
        let again = try await phone.run(["consent", "grant", "--to", "Mia", "--scope", "journal", "--yes"])
        let second = String(try #require(again.split(separator: "\n").first { $0.count == 32 }))
        try await phone.run(["sync"])
        let watch = try RunningTandem(["sync", "--watch"], home: mentor.home)
        defer { Task { await watch.stop() } }
        #expect(await watch.wait { _, err in err.contains("Connected") }, "\(watch.stderr)")
        let deadline = ContinuousClock.now + .seconds(30)
        while try !Self.homeHolds(mentor.home, planted), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try Self.homeHolds(mentor.home, planted), "the watching device received the journal")
        try await phone.run(["consent", "revoke", second])
        let started = ContinuousClock.now
        try await phone.run(["sync"])
        while try Self.homeHolds(mentor.home, planted), ContinuousClock.now < started + .seconds(30) { try await Task.sleep(for: .milliseconds(20)) }
        let took = ContinuousClock.now - started
        #expect(try !Self.homeHolds(mentor.home, planted), "purged while watching")
        print("consent e2e: revoke to purge on a watching device took \(took)")
        await watch.stop()

        // Unassigning the mentor puts the patient's consent to them on hold: the patient's next sync says so.
        let third = try await phone.run(["consent", "grant", "--to", "Mia", "--scope", "metrics", "--yes"])
        #expect(!(try await phone.run(["sync"])).contains("on hold"), "a grant's own sync tells of nothing on hold")
        let unassigned = try await TandemExecutable.run(["admin", "unassign", "--mentor", "Mia", "--patient", "Sam", "--db", center.db])
        #expect(unassigned.status == 0, "\(unassigned.combined)")
        let told = try await phone.run(["sync"])
        let id = String(try #require(third.split(separator: "\n").first { $0.count == 32 }).prefix(8))
        #expect(told.contains("Your consent \(id) to Mia (mentor) is on hold: they are no longer in your care team"), "\(told)")
        #expect(!(try await phone.run(["sync"])).contains("on hold"), "told once")
        #expect(try await phone.run(["consent", "list"]).contains("on hold (left your care team)"))
    }
}

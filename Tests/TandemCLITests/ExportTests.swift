import Foundation
import TandemTestSupport
import Testing

/// `tandem export`: the patient's copy of their records, through the real executable. The
/// FHIR Bundle is checked by a FHIR library Tandem did not write (`scripts/fhir-check`,
/// fhir.resources 6.4.0, FHIR R4), which `scripts/bootstrap` installs: without python3 or
/// the library these tests fail, they never skip.
@Suite("Export")
struct ExportTests {
    struct Export: Decodable {
        var format: String
        var exportedAt: String
        var member: Member
        var journal: [Entry]
        var consents: [Consent]
        var notes: [Note]
        var disclosures: [Disclosure]
        var notice: String?
    }
    struct Member: Decodable { var id: String?; var name: String; var role: String }
    struct Entry: Decodable {
        var id: String; var mood: Int?; var craving: Int?; var hoursSlept: Double?
        var symptoms: [String]; var tags: [String]; var text: [Text]
    }
    struct Text: Decodable { var text: String }
    struct Consent: Decodable {
        var id: String; var recipient: String; var recipientName: String?; var scope: String; var status: String
    }
    struct Note: Decodable {
        var id: String; var author: String?; var sharedWithPatient: Bool; var followUps: [String]; var text: [Text]; var notice: String?
    }
    struct Disclosure: Decodable { var recipient: String; var scope: String; var consent: String?; var records: [String] }

    struct FHIRBundle: Decodable { var resourceType: String; var type: String; var meta: Meta; var entry: [BundleEntry] }
    struct BundleEntry: Decodable { var fullUrl: String; var resource: Resource }
    struct Resource: Decodable { var resourceType: String; var id: String; var meta: Meta; var note: [Annotation]? }
    struct Meta: Decodable { var security: [Coding] }
    struct Coding: Decodable { var system: String; var code: String }
    struct Annotation: Decodable { var text: String }

    static let notice = "42 CFR part 2 prohibits unauthorized disclosure of these records."
    /// The HL7 DS4P labels every resource carries (docs/fhir.md), as `system|code`.
    static let securityLabels: Set<String> = [
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
        "http://terminology.hl7.org/CodeSystem/v3-ActCode|42CFRPart2",
        "http://terminology.hl7.org/CodeSystem/v3-ActCode|NORDSCLCD",
    ]

    @discardableResult
    func run(_ arguments: [String], _ home: String) async throws -> String {
        let result = try await TandemExecutable.run(arguments, home: home)
        #expect(result.status == 0, "tandem \(arguments.first ?? ""): \(result.stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func add(_ arguments: [String], _ home: String) async throws -> String {
        try await run(["journal", "add"] + arguments, home)
    }

    @Test func export_writesThePatientsRecords_toAFileOnlyTheyRead_refusesToOverwrite_andItsFHIRBundleValidates() async throws {
        let dir = try TemporaryDirectory("export-test")
        let home = dir.path("patient")
        try await run(["init", "--name", "Sam", "--role", "patient"], home)
        let planted = "PLANTED-export-7d1e"
        let first = try await add(
            ["--mood", "3", "--craving", "8", "--symptom", "nausea", "--symptom", "runny nose", "--tag", "Family", "--slept", "4.5",
             "--at", "2026-11-20T23:10:00+01:00", "--text", planted], home)
        let second = try await add(["--mood", "6", "--craving", "2", "--symptom", "tremor", "--at", "2026-11-22 09:00"], home)
        let third = try await add(
            ["--mood", "7", "--craving", "1", "--slept", "8", "--at", "2026-11-24T08:00Z", "--text", "Better today."], home)

        // --json (the default) to a file: nothing of it on the terminal, mode 0600.
        let jsonPath = dir.path("export.json")
        let written = try await TandemExecutable.run(["export", "--json", "--out", jsonPath], home: home)
        #expect(written.status == 0, "\(written.stderr)")
        #expect(!written.stdout.contains(planted) && !written.stdout.contains("tandem-export-1") && !written.stdout.contains("{"),
                "\(written.stdout)")
        #expect(!written.stderr.contains(planted))
        #expect(try Self.mode(jsonPath) == 0o600)
        let jsonData = try Data(contentsOf: URL(fileURLWithPath: jsonPath))
        let export = try JSONDecoder().decode(Export.self, from: jsonData)
        #expect(export.format == "tandem-export-1")
        #expect(export.member.name == "Sam" && export.member.role == "patient" && export.member.id == nil)
        #expect(export.journal.map(\.id) == [first, second, third])
        let entry = try #require(export.journal.first)
        #expect(entry.text.map(\.text) == [planted] && entry.tags == ["Family"] && entry.hoursSlept == 4.5)
        #expect(entry.symptoms == ["nausea", "runny-nose"] && entry.mood == 3 && entry.craving == 8)
        #expect(export.consents.isEmpty && export.notes.isEmpty && export.disclosures.isEmpty)
        // Only the patient's own records: no notice.
        #expect(export.notice == nil)
        let keys = try #require(try JSONSerialization.jsonObject(with: jsonData) as? [String: Any]).keys
        #expect(Set(keys) == ["format", "exportedAt", "member", "journal", "consents", "notes", "disclosures"])

        // An existing file is never overwritten without --force; with it, replaced whole, 0600 again.
        let again = try await TandemExecutable.run(["export", "--out", jsonPath], home: home)
        #expect(again.status != 0 && again.stderr.contains("--force"), "\(again.combined)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: jsonPath)) == jsonData)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: jsonPath)
        let forced = try await TandemExecutable.run(["export", "--out", jsonPath, "--force"], home: home)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try Self.mode(jsonPath) == 0o600)
        #expect(try JSONDecoder().decode(Export.self, from: Data(contentsOf: URL(fileURLWithPath: jsonPath))).journal.count == 3)
        // Usage errors write nothing.
        #expect(try await TandemExecutable.run(["export", "--json", "--fhir"], home: home).status != 0)
        #expect(try await TandemExecutable.run(["export", "--force"], home: home).status != 0)
        #expect(try await TandemExecutable.run(["export", "--out", dir.path("no-such-folder/x.json")], home: home).status != 0)

        // Without --out, standard output is the document.
        let printed = try JSONDecoder().decode(Export.self, from: Data(try await run(["export"], home).utf8))
        #expect(printed.journal.map(\.id) == [first, second, third])

        // --fhir: a Bundle that a FHIR R4 library accepts, every resource labelled.
        let fhirPath = dir.path("export.fhir.json")
        let fhir = try await TandemExecutable.run(["export", "--fhir", "--out", fhirPath], home: home)
        #expect(fhir.status == 0, "\(fhir.stderr)")
        #expect(!fhir.stdout.contains(planted) && !fhir.stdout.contains("resourceType") && !fhir.stdout.contains("{"),
                "\(fhir.stdout)")
        #expect(try Self.mode(fhirPath) == 0o600)
        let counts = try await Self.expectValidFHIR(fhirPath)
        #expect(counts.contains("Observation: 3") && counts.contains("Patient: 1"), "\(counts)")
        let bundle = try JSONDecoder().decode(FHIRBundle.self, from: Data(contentsOf: URL(fileURLWithPath: fhirPath)))
        #expect(bundle.resourceType == "Bundle" && bundle.type == "collection")
        #expect(Self.labels(bundle.meta).isSuperset(of: Self.securityLabels))
        for item in bundle.entry {
            let resource = item.resource
            #expect(Self.labels(resource.meta).isSuperset(of: Self.securityLabels), "\(resource.resourceType) \(resource.id)")
        }
        let observations = bundle.entry.filter { $0.resource.resourceType == "Observation" }
        #expect(observations.map(\.resource.id) == [first, second, third])
        #expect(observations.first?.fullUrl == "urn:uuid:" + Self.uuid(first))
        #expect(observations.first?.resource.note?.map(\.text) == [planted])

        // The checker does fail: the same Bundle without an Observation's required status.
        let fhirData = try Data(contentsOf: URL(fileURLWithPath: fhirPath))
        var broken = try #require(try JSONSerialization.jsonObject(with: fhirData) as? [String: Any])
        var entries = try #require(broken["entry"] as? [[String: Any]])
        try #require(entries.count > 1)
        var observation = try #require(entries[1]["resource"] as? [String: Any])
        #expect(observation["resourceType"] as? String == "Observation")
        observation.removeValue(forKey: "status")
        entries[1]["resource"] = observation
        broken["entry"] = entries
        let brokenPath = dir.path("broken.fhir.json")
        try JSONSerialization.data(withJSONObject: broken).write(to: URL(fileURLWithPath: brokenPath))
        let refused = try await Self.fhirCheck(brokenPath)
        #expect(refused.status == 1 && refused.output.contains("status"), "\(refused.output)")

        // No half-written file is left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.url.path)
        #expect(Set(left) == ["patient", "export.json", "export.fhir.json", "broken.fhir.json"], "\(left)")

        // A mentor's home has no patient's copy to give.
        let mentorHome = dir.path("mentor")
        try await run(["init", "--name", "Alex", "--role", "mentor"], mentorHome)
        let mentorExport = try await TandemExecutable.run(["export"], home: mentorHome)
        #expect(mentorExport.status != 0 && mentorExport.stdout.isEmpty, "\(mentorExport.combined)")
    }

    /// A real server: the consent the patient granted, the note a mentor shared with them,
    /// and the accounting of the mentor's read are all in the patient's export.
    @Test func export_carriesConsents_notesSharedWithThePatient_andTheAccountingOfDisclosures() async throws {
        let dir = try TemporaryDirectory("export-test")
        let db = dir.path("center.sqlite")
        let initialized = try await TandemExecutable.run(["admin", "init", "--db", db])
        #expect(initialized.status == 0, "\(initialized.stderr)")
        let server = try await LiveServer(dbPath: db)
        func invite(_ role: String, _ name: String) async throws -> String {
            let result = try await TandemExecutable.run(["admin", "invite", "--db", db, "--role", role, "--name", name])
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let phone = dir.path("phone"), mentor = dir.path("mentor")
        try await run(["enroll", "--server", server.url, "--code", try await invite("patient", "Sam"), "--device", "phone"], phone)
        try await run(["enroll", "--server", server.url, "--code", try await invite("mentor", "Mia"), "--device", "mentor"], mentor)
        let assigned = try await TandemExecutable.run(["admin", "assign", "--mentor", "Mia", "--patient", "Sam", "--db", db])
        #expect(assigned.status == 0, "\(assigned.combined)")

        let planted = "PLANTED-export-live-3a9c"
        let entry = try await add(["--mood", "4", "--craving", "6", "--symptom", "tremor", "--text", planted], phone)
        try await run(["sync"], phone)
        try await run(["sync"], mentor)
        let granted = try await run(["consent", "grant", "--to", "Mia", "--scope", "metrics", "--purpose", "peer support", "--yes"], phone)
        let consent = String(try #require(granted.split(separator: "\n").first { $0.count == 32 }))
        try await run(["sync"], phone)
        // The mentor reads the entry under the consent: a disclosure, recorded on the patient's chain.
        try await run(["sync"], mentor)
        let noteText = "Good session; see you Friday."
        let note = try await run(
            ["note", "add", "--patient", "Sam", "--text", noteText, "--follow-up", "Call on Friday", "--share-with-patient"], mentor)
        try await run(["sync"], mentor)
        // The patient's sync brings the shared note and the accounting.
        try await run(["sync"], phone)

        let export = try JSONDecoder().decode(Export.self, from: Data(try await run(["export"], phone).utf8))
        let mia = try #require(export.consents.first?.recipient)
        #expect(export.member.id?.count == 32 && export.member.name == "Sam" && export.member.role == "patient")
        #expect(export.journal.map(\.id) == [entry] && export.journal.first?.text.map(\.text) == [planted])
        #expect(export.consents.map(\.id) == [consent])
        let given = try #require(export.consents.first)
        #expect(given.recipientName == "Mia" && given.scope == "metrics" && given.status == "active")
        #expect(export.notes.map(\.id) == [note])
        let shared = try #require(export.notes.first)
        #expect(shared.text.map(\.text) == [noteText] && shared.followUps == ["Call on Friday"] && shared.sharedWithPatient)
        #expect(shared.author == mia && shared.notice == Self.notice)
        // Someone else's record is in it: the notice of 42 CFR §2.32.
        #expect(export.notice == Self.notice)
        let read = export.disclosures.filter { $0.recipient == mia && $0.consent == consent && $0.scope == "metrics" }
        #expect(read.contains { $0.records.contains(entry) }, "the mentor's read is in the patient's export")

        let fhirPath = dir.path("sam.fhir.json")
        let fhir = try await TandemExecutable.run(["export", "--fhir", "--out", fhirPath], home: phone)
        #expect(fhir.status == 0, "\(fhir.stderr)")
        #expect(!fhir.stdout.contains(planted) && !fhir.stdout.contains(noteText) && !fhir.stdout.contains("resourceType"))
        let counts = try await Self.expectValidFHIR(fhirPath)
        for line in ["Patient: 1", "Observation: 1", "Consent: 1", "Communication: 1", "AuditEvent: "] {
            #expect(counts.contains(line), "\(counts)")
        }
        let bundle = try JSONDecoder().decode(FHIRBundle.self, from: Data(contentsOf: URL(fileURLWithPath: fhirPath)))
        let communication = bundle.entry.first { $0.resource.resourceType == "Communication" }
        #expect(communication?.resource.id == note && communication?.resource.note?.map(\.text) == [Self.notice])
        #expect(bundle.entry.first { $0.resource.resourceType == "Consent" }?.resource.id == consent)
        await server.stop()
    }

    // MARK: Helpers

    static func mode(_ path: String) throws -> Int? {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
    }

    static func labels(_ meta: Meta) -> Set<String> { Set(meta.security.map { "\($0.system)|\($0.code)" }) }

    /// 32 hex digits as 8-4-4-4-12.
    static func uuid(_ hex: String) -> String {
        let digits = Array(hex)
        guard digits.count == 32 else { return hex }
        let groups = [digits[0..<8], digits[8..<12], digits[12..<16], digits[16..<20], digits[20..<32]]
        return groups.map { String($0) }.joined(separator: "-")
    }

    /// Runs `scripts/fhir-check FILE`, standard output and error together.
    static func fhirCheck(_ path: String) async throws -> ScriptRun {
        try await ScriptRun.run(ScriptRun.script("fhir-check"), [path])
    }

    /// Runs the checker and records a failure, saying what to install, unless it accepts
    /// the Bundle; returns its output (a line per resource type and count).
    static func expectValidFHIR(_ path: String) async throws -> String {
        let checked = try await fhirCheck(path)
        switch checked.status {
        case 0:
            break
        case 127:
            Issue.record("python3 is missing: scripts/fhir-check needs it and fhir.resources 6.4.0 (scripts/bootstrap). \(checked.output)")
        case 2:
            Issue.record("scripts/fhir-check could not check the Bundle: \(checked.output)")
        default:
            Issue.record("scripts/fhir-check refused the Bundle tandem export --fhir wrote: \(checked.output)")
        }
        return checked.output
    }
}

import TandemCore
import TandemTestSupport
import Testing

@Suite("Models and field tables")
struct ModelTests {
    func write(_ edit: JournalEdit, current: RecordState? = nil) throws -> [Change] {
        var writer = ChangeWriter(replica: try Notation.id("A"))
        return try writer.write(try edit.recordEdit(), to: current?.id ?? RecordID(high: 1, low: 1), current: current, wallMillis: 1_000)
    }

    @Test func journalEdit_roundTripsThroughTheMergedRecord() throws {
        var edit = JournalEdit()
        edit.at = try LocalDateTime(parsing: "2026-11-25T03:10+01:00")
        edit.mood = 3
        edit.craving = 8
        edit.addSymptoms = [.nausea, .runnyNose]
        edit.addTags = ["  Work   Stress "]
        edit.hoursSlept = 4.75
        edit.text = "Couldn't sleep."
        var state = ReplicaState()
        let changes = try write(edit)
        state.apply(changes)
        let record = try #require(state[RecordID(high: 1, low: 1)])
        let entry = try #require(JournalEntry(record))
        #expect(entry.at?.description == "2026-11-25T03:10:00+01:00")
        #expect(entry.mood == 3 && entry.craving == 8)
        #expect(entry.symptoms == [.nausea, .runnyNose])
        #expect(entry.tags == ["Work Stress"], "shown as written, white space collapsed")
        #expect(entry.hoursSlept == 4.75)
        #expect(entry.text.map(\.text) == ["Couldn't sleep."])
        #expect(changes.first?.kind == .create)
        // No tag text in any field name.
        #expect(!changes.contains { $0.field.rawValue.contains("work") })
    }

    static let invalidEdits: [(String, @Sendable (inout JournalEdit) -> Void)] = [
        ("mood 11", { $0.mood = 11 }),
        ("mood -1", { $0.mood = -1 }),
        ("craving 11", { $0.craving = 11 }),
        ("slept 24.25", { $0.hoursSlept = 24.25 }),
        ("slept 1.1", { $0.hoursSlept = 1.1 }),
        ("slept NaN", { $0.hoursSlept = .nan }),
        ("empty tag", { $0.addTags = ["   "] }),
        ("text over 64 KiB", { $0.text = String(repeating: "x", count: 64 * 1024 + 1) }),
        ("add and remove one symptom", { $0.addSymptoms = [.chills]; $0.removeSymptoms = [.chills] }),
    ]

    @Test(arguments: invalidEdits.map(\.0))
    func invalidJournalEdit_isRefused_andNothingIsStamped(_ name: String) throws {
        var edit = JournalEdit()
        try #require(Self.invalidEdits.first { $0.0 == name }).1(&edit)
        var writer = ChangeWriter(replica: try Notation.id("A"))
        let before = writer.clock
        #expect(throws: TandemCoreError.self) {
            try writer.write(try edit.recordEdit(), to: .random(), current: nil, wallMillis: 5_000)
        }
        #expect(writer.clock == before, "a refused edit stamps nothing")
    }

    @Test func errorMessages_neverCarryTheValue() throws {
        var edit = JournalEdit()
        edit.text = "secret relapse story " + String(repeating: "x", count: 70_000)
        do {
            _ = try write(edit)
            Issue.record("accepted")
        } catch {
            #expect(!"\(error)".contains("secret"))
        }
        let tooLong = Change(id: ChangeID(timestamp: .zero, replica: try Notation.id("A")), record: .random(), field: "purpose", kind: .lww, value: .string(String(repeating: "private ", count: 100)))
        #expect(throws: TandemCoreError.invalidValue(field: "purpose", rule: "text of at most 500 bytes")) { try Schema.validate(tooLong, in: .consent) }
    }

    @Test func unknownSymptom_isNotInTheVocabulary() {
        #expect(Symptom(name: "runny nose") == .runnyNose)
        #expect(Symptom(name: "Cravings at night") == .cravingsAtNight)
        #expect(Symptom(name: "headache") == nil)
        #expect(Symptom.allCases.count == 14)
    }

    @Test func deletedRecord_cannotBeEdited() throws {
        var state = ReplicaState()
        var edit = JournalEdit()
        edit.mood = 1
        state.apply(try write(edit))
        var writer = ChangeWriter(replica: try Notation.id("A"))
        let id = RecordID(high: 1, low: 1)
        state.apply(try writer.write(.delete(.journal), to: id, current: state[id], wallMillis: 2_000))
        #expect(throws: TandemCoreError.self) { try writer.write(try edit.recordEdit(), to: id, current: state[id], wallMillis: 3_000) }
    }

    @Test func members_areNeverWrittenByADevice() throws {
        var writer = ChangeWriter(replica: try Notation.id("A"))
        var edit = RecordEdit(collection: .member)
        edit.set("role", .string("staff"))
        #expect(throws: TandemCoreError.self) { try writer.write(edit, to: .random(), current: nil, wallMillis: 1) }
    }

    @Test func noteAndConsent_requireTheirSetOnceFields() throws {
        var writer = ChangeWriter(replica: try Notation.id("M"))
        var note = NoteEdit()
        note.text = "Talked through the evening."
        #expect(throws: TandemCoreError.self) { try writer.write(try note.recordEdit(), to: .random(), current: nil, wallMillis: 1) }
        note.patient = try Notation.id("P")
        note.shared = true
        let noteID = RecordID.random()
        var state = ReplicaState()
        state.apply(try writer.write(try note.recordEdit(), to: noteID, current: nil, wallMillis: 2))
        let noteRecord = try #require(state[noteID])
        let read = try #require(MentorNote(noteRecord))
        let patient: MemberID = try Notation.id("P")
        #expect(read.patient == patient && read.isShared)
        // The patient is set once: a later edit cannot change it.
        #expect(throws: TandemCoreError.self) { try writer.write(try note.recordEdit(), to: noteID, current: state[noteID], wallMillis: 3) }

        let consentID = RecordID.random()
        let grant = ConsentEdit.grant(patient: try Notation.id("P"), recipient: try Notation.id("M"), scope: .metrics, expiresMillis: 10_000, purpose: "peer support")
        state.apply(try writer.write(grant, to: consentID, current: nil, wallMillis: 4))
        state.apply(try writer.write(ConsentEdit.revoke(atMillis: 9_000), to: consentID, current: state[consentID], wallMillis: 5))
        state.apply(try writer.write(ConsentEdit.revoke(atMillis: 7_000), to: consentID, current: state[consentID], wallMillis: 6))
        let consentRecord = try #require(state[consentID])
        let consent = try #require(Consent(consentRecord))
        #expect(consent.revokedMillis == 7_000)
        #expect(consent.isActive(atMillis: 6_999) && !consent.isActive(atMillis: 7_000))
    }

    @Test func metricsProjection_neverCarriesFreeTextOrTags() throws {
        let tag = SetElement.field(prefix: "tag", normalizedText: "family")
        #expect(!Schema.carries(.metrics, .journal, field: "text"))
        #expect(!Schema.carries(.metrics, .journal, field: tag))
        #expect(Schema.carries(.journal, .journal, field: tag))
        #expect(Schema.carries(.metrics, .journal, field: "mood"))
        #expect(Schema.carries(.metrics, .journal, field: Symptom.tremor.field))
        #expect(Schema.carries(.metrics, .journal, field: .record))
        for spec in Schema.tables[.journal] ?? [] where spec.rule == .text(maxBytes: Schema.maxTextBytes) || spec.rule == .elementOrNull {
            #expect(!spec.projections.contains(.metrics), "\(spec.name)")
        }
    }

    @Test func fieldWithoutATableEntry_reachesNoProjection() throws {
        for projection in Projection.allCases {
            #expect(!Schema.carries(projection, .journal, field: "future.field"))
            #expect(!Schema.carries(projection, CollectionName("future"), field: "mood"))
        }
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func sha256_matchesTheFIPSVectors(_ message: String, _ digest: String) {
        #expect(hexString(SHA256Digest.hash(Array(message.utf8))) == digest)
    }

    @Test(arguments: ["2026-02-29T10:00:00+01:00", "2026-13-01T10:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25", "2026-11-25T10:00:00+15:00", "2026-11-25T10:00:00+01:00x", "yesterday"])
    func invalidDateTime_isRefused(_ text: String) {
        #expect(throws: TandemCoreError.self) { try LocalDateTime(parsing: text) }
    }

    @Test(arguments: ["2026-1-05", "2026-01-5", "+026-01-05", "2026/01/05", "2026-01-05 ", " 2026-01-05", "2026-00-10", "2026-02-30", "1969-12-31", "２０２６-01-05", "2026-01-0x", ""])
    func invalidDate_isRefused(_ text: String) {
        #expect(throws: TandemCoreError.self) { try LocalDate(parsing: text) }
        #expect(throws: TandemCoreError.self) { try LocalDateTime(parsing: text + "T10:00:00Z") }
    }

    /// Dates and times are written byte by byte: the same text as the plain formula, and
    /// read back as the same value.
    @Test func datesAndTimes_areWrittenAsTheyAreRead() throws {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let date = try LocalDate(daysSince1970: Int.random(in: 0..<2_900_000, using: &generator))
            #expect(date.description == "\(date.year)-\(two(date.month))-\(two(date.day))")
            #expect(try LocalDate(parsing: date.description) == date)
            let (hour, minute, second) = (Int.random(in: 0..<24), Int.random(in: 0..<60), Int.random(in: 0..<60))
            let offset = Int.random(in: -(14 * 60)...(14 * 60))
            guard let time = try? LocalDateTime(date: date, hour: hour, minute: minute, second: second, offsetMinutes: offset) else { continue }
            let sign = offset < 0 ? "-" : "+"
            #expect(time.description == "\(date)T\(two(hour)):\(two(minute)):\(two(second))\(sign)\(two(abs(offset) / 60)):\(two(abs(offset) % 60))")
            #expect(try LocalDateTime(parsing: time.description) == time)
        }
    }

    @Test func dates_roundTripThroughDaysSince1970() throws {
        for days in stride(from: 0, to: 40_000, by: 37) {
            #expect(try LocalDate(daysSince1970: days).daysSince1970 == days)
        }
        #expect(try LocalDate(parsing: "2024-02-29").description == "2024-02-29")
        #expect(try LocalDateTime(parsing: "2026-01-01T00:30:00+01:00").epochMillis == 1_767_223_800_000)
    }
}

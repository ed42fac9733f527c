public import TandemCore

/// Realistic journals, notes and consents for N patients over D days, from a seed.
///
/// ```swift
/// let workload = try Workload.generate(.init(patients: 20, days: 30, seed: 7))
/// for change in workload.changes { state.apply(change) }
/// ```
///
/// Patients write one to three entries a day on one of their devices (mood, craving,
/// symptoms, sleep, sometimes tags and text), sometimes correct them later, now and then
/// delete one, and once in a while write the same text offline on two devices (a text
/// conflict). Mentors write notes about their patients and share some. Each patient
/// consents to their mentor reading metrics or the whole journal; some revoke.
/// `changes` is in arrival order: by timestamp, interleaved across replicas.
public struct Workload: Sendable {
    public struct Options: Sendable {
        public var patients: Int
        public var days: Int
        public var seed: UInt64
        public var devicesPerPatient = 2
        /// Patients each mentor follows; 0 for no mentors at all.
        public var patientsPerMentor = 5
        /// Journal numbers and symptoms only: no text, tags, notes or consents.
        public var metricsOnly = false
        /// 2026-01-05T00:00:00Z.
        public var startMillis: UInt64 = 1_767_571_200_000

        public init(patients: Int, days: Int, seed: UInt64, metricsOnly: Bool = false) {
            self.patients = patients
            self.days = days
            self.seed = seed
            self.metricsOnly = metricsOnly
        }
    }

    public struct Participant: Sendable {
        public var member: MemberID
        public var role: Role
        public var replicas: [ReplicaID]
    }

    public let options: Options
    public private(set) var patients: [Participant] = []
    public private(set) var mentors: [Participant] = []
    /// Every change, in arrival order.
    public private(set) var changes: [Change] = []

    /// - Throws: `TandemCoreError` only if the generator itself breaks a field rule (a bug).
    public static func generate(_ options: Options) throws(TandemCoreError) -> Workload {
        var workload = Workload(options: options)
        try workload.run()
        return workload
    }

    private init(options: Options) { self.options = options }

    private struct Author {
        var writers: [ChangeWriter]
        /// What this member's devices know of their own records (they sync often).
        var state = ReplicaState()
        var records: [RecordID] = []
    }

    private enum Action { case journal, correct, delete, conflict, note, share, revoke }

    private mutating func run() throws(TandemCoreError) {
        var rng = SeededGenerator(seed: options.seed)
        var authors: [Author] = []
        for _ in 0..<options.patients {
            let replicas = (0..<max(1, options.devicesPerPatient)).map { _ in ReplicaID.random(using: &rng) }
            patients.append(Participant(member: MemberID.random(using: &rng), role: .patient, replicas: replicas))
            authors.append(Author(writers: replicas.map { ChangeWriter(replica: $0) }))
        }
        let mentorCount = options.metricsOnly || options.patientsPerMentor == 0
            ? 0 : max(1, (options.patients + options.patientsPerMentor - 1) / options.patientsPerMentor)
        for _ in 0..<mentorCount {
            let replica = ReplicaID.random(using: &rng)
            mentors.append(Participant(member: MemberID.random(using: &rng), role: .mentor, replicas: [replica]))
            authors.append(Author(writers: [ChangeWriter(replica: replica)]))
        }
        var consents: [RecordID?] = Array(repeating: nil, count: options.patients)
        var output: [Change] = []
        output.reserveCapacity(options.patients * options.days * 20)

        for day in 0..<options.days {
            let dayStart = options.startMillis + UInt64(day) * 86_400_000
            var events: [(at: UInt64, author: Int, action: Action)] = []
            for patient in 0..<options.patients {
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    events.append((dayStart + UInt64.random(in: 0..<86_400_000, using: &rng), patient, .journal))
                }
                if rng.chance(0.25) { events.append((dayStart + UInt64.random(in: 0..<86_400_000, using: &rng), patient, .correct)) }
                if rng.chance(0.03) { events.append((dayStart + UInt64.random(in: 0..<86_400_000, using: &rng), patient, .delete)) }
                if !options.metricsOnly {
                    if rng.chance(0.02) { events.append((dayStart + UInt64.random(in: 0..<86_400_000, using: &rng), patient, .conflict)) }
                    if day == 0 || rng.chance(0.01) { events.append((dayStart + UInt64.random(in: 0..<86_400_000, using: &rng), patient, .revoke)) }
                }
            }
            for mentor in 0..<mentorCount {
                for _ in 0..<Int.random(in: 0...3, using: &rng) {
                    events.append((dayStart + UInt64.random(in: 0..<86_400_000, using: &rng), options.patients + mentor, .note))
                }
                if rng.chance(0.2) { events.append((dayStart + UInt64.random(in: 0..<86_400_000, using: &rng), options.patients + mentor, .share)) }
            }
            events.sort { $0.at < $1.at }
            for event in events {
                let author = event.author
                let device = Int.random(in: 0..<authors[author].writers.count, using: &rng)
                var writer = authors[author].writers[device]
                var written: [Change] = []
                switch event.action {
                case .journal:
                    let id = RecordID.random(using: &rng)
                    written = try writer.write(try journalEdit(at: event.at, using: &rng), to: id, current: nil, wallMillis: event.at)
                    authors[author].records.append(id)
                case .correct:
                    guard let id = authors[author].records.last, let current = authors[author].state[id], !current.isDeleted else { break }
                    var edit = JournalEdit()
                    edit.mood = Int.random(in: 0...10, using: &rng)
                    if rng.chance(0.5) { edit.removeSymptoms = [rng.pick(Symptom.allCases)] }
                    if !options.metricsOnly && rng.chance(0.5) { edit.text = Phrases.journal(using: &rng) }
                    written = try writer.write(try edit.recordEdit(), to: id, current: current, wallMillis: event.at)
                case .delete:
                    guard authors[author].records.count > 1 else { break }
                    let id = authors[author].records.removeFirst()
                    written = try writer.write(.delete(.journal), to: id, current: authors[author].state[id], wallMillis: event.at)
                case .conflict:
                    // Two devices edit the same text offline, each from what it had.
                    guard let id = authors[author].records.last, let current = authors[author].state[id],
                          !current.isDeleted, authors[author].writers.count > 1 else { break }
                    var edit = JournalEdit()
                    edit.text = Phrases.journal(using: &rng)
                    written = try writer.write(try edit.recordEdit(), to: id, current: current, wallMillis: event.at)
                    var other = authors[author].writers[(device + 1) % authors[author].writers.count]
                    edit.text = Phrases.journal(using: &rng)
                    written += try other.write(try edit.recordEdit(), to: id, current: current, wallMillis: event.at + 1)
                    authors[author].writers[(device + 1) % authors[author].writers.count] = other
                case .revoke:
                    guard !mentors.isEmpty else { break }
                    let mentor = mentors[author / max(1, options.patientsPerMentor) % mentors.count].member
                    if let consent = consents[author] {
                        written = try writer.write(ConsentEdit.revoke(atMillis: Int64(event.at)), to: consent, current: authors[author].state[consent], wallMillis: event.at)
                        consents[author] = nil
                    } else {
                        let id = RecordID.random(using: &rng)
                        let edit = ConsentEdit.grant(
                            patient: patients[author].member, recipient: mentor,
                            scope: rng.chance(0.5) ? .metrics : .journal, expiresMillis: nil, purpose: "peer support")
                        written = try writer.write(edit, to: id, current: nil, wallMillis: event.at)
                        consents[author] = id
                    }
                case .note:
                    let mentor = author - options.patients
                    let mine = (0..<options.patients).filter { $0 / max(1, options.patientsPerMentor) % max(1, mentorCount) == mentor }
                    guard !mine.isEmpty else { break }
                    var edit = NoteEdit()
                    edit.patient = patients[rng.pick(mine)].member
                    edit.date = try LocalDate(daysSince1970: Int(event.at / 86_400_000))
                    edit.text = Phrases.note(using: &rng)
                    if rng.chance(0.5) { edit.addFollowUps = [rng.pick(Phrases.followUps)] }
                    edit.shared = rng.chance(0.3)
                    let id = RecordID.random(using: &rng)
                    written = try writer.write(try edit.recordEdit(), to: id, current: nil, wallMillis: event.at)
                    authors[author].records.append(id)
                case .share:
                    guard let id = authors[author].records.last, let current = authors[author].state[id] else { break }
                    var edit = NoteEdit()
                    edit.shared = !(MentorNote(current)?.isShared ?? false)
                    written = try writer.write(try edit.recordEdit(), to: id, current: current, wallMillis: event.at)
                }
                authors[author].writers[device] = writer
                authors[author].state.apply(written)
                for index in authors[author].writers.indices { authors[author].writers[index].observe(written) }
                output.append(contentsOf: written)
            }
        }
        output.sort { $0.id < $1.id }
        changes = output
    }

    private func journalEdit(at millis: UInt64, using rng: inout SeededGenerator) throws(TandemCoreError) -> RecordEdit {
        var edit = JournalEdit()
        let offset = 60
        let local = Int64(millis / 1000) + Int64(offset * 60)
        let date = try LocalDate(daysSince1970: Int(local / 86_400))
        let seconds = Int(local % 86_400)
        edit.at = try LocalDateTime(date: date, hour: seconds / 3600, minute: seconds / 60 % 60, second: seconds % 60, offsetMinutes: offset)
        edit.mood = Int.random(in: 0...10, using: &rng)
        edit.craving = Int.random(in: 0...10, using: &rng)
        if rng.chance(0.4) { edit.hoursSlept = Double(Int.random(in: 8...40, using: &rng)) / 4 }
        for _ in 0..<Int.random(in: 0...3, using: &rng) { edit.addSymptoms.insert(rng.pick(Symptom.allCases)) }
        if !options.metricsOnly {
            if rng.chance(0.3) { edit.addTags = [rng.pick(Phrases.tags)] }
            if rng.chance(0.6) { edit.text = Phrases.journal(using: &rng) }
        }
        return try edit.recordEdit()
    }
}

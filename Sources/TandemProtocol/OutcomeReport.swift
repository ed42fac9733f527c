/// The center's de-identified statistics (`GET /v1/outcomes`, PROTOCOL.md §9.19): counted
/// only over patients who granted an `aggregate` consent, per whole week, with every cell
/// of 1 to `minimumCell − 1` patients suppressed. Nothing in it names a person, a record or
/// a day of anyone's own.
public struct OutcomeReport: Codable, Sendable, Equatable {
    /// The first Monday and last Sunday of the weekly table (`YYYY-MM-DD`).
    public var from: String
    public var to: String
    /// The cohort shown (`YYYY-MM`, the month of enrollment), nil for the whole center.
    public var cohort: String?
    /// The mentor whose caseload is shown, by name (nil: not one caseload). A week's
    /// caseload is the patients assigned to that mentor alone at the week's end.
    public var caseload: String?
    /// No published cell counts fewer patients than this (and none counts 1 to this − 1
    /// of anything).
    public var minimumCell: Int
    /// Patient counts are rounded to a multiple of this.
    public var countsRoundedTo: Int
    /// One row per week of the range that ended before the report was made.
    public var weeks: [OutcomeWeek]
    /// One row per week since enrollment (0 is the week a patient enrolled), over every
    /// counted patient of the center or cohort, whatever the range. Empty for a caseload:
    /// these figures take in whole cohorts, which a caseload splits.
    public var sinceEnrollment: [OutcomeEnrollmentWeek]

    public init(
        from: String, to: String, cohort: String?, caseload: String? = nil, minimumCell: Int, countsRoundedTo: Int, weeks: [OutcomeWeek],
        sinceEnrollment: [OutcomeEnrollmentWeek]
    ) {
        self.from = from
        self.to = to
        self.cohort = cohort
        self.caseload = caseload
        self.minimumCell = minimumCell
        self.countsRoundedTo = countsRoundedTo
        self.weeks = weeks
        self.sinceEnrollment = sinceEnrollment
    }
}

/// One calendar week (Monday to Sunday, the entries' local dates).
public struct OutcomeWeek: Codable, Sendable, Equatable {
    /// Its Monday, `YYYY-MM-DD`.
    public var week: String
    /// Over the patients who recorded a craving that week: the mean and median of each
    /// one's mean craving (0–10).
    public var craving: OutcomeCell
    /// The same for mood.
    public var mood: OutcomeCell
    /// Over the patients enrolled by the week's end: the share who wrote at least one entry.
    public var adherence: OutcomeCell
    /// Over the patients enrolled by the week's end: mentor notes written about them that
    /// week, per patient.
    public var contact: OutcomeCell

    public init(week: String, craving: OutcomeCell, mood: OutcomeCell, adherence: OutcomeCell, contact: OutcomeCell) {
        self.week = week
        self.craving = craving
        self.mood = mood
        self.adherence = adherence
        self.contact = contact
    }
}

/// One week since enrollment, over the patients whose that week has ended.
public struct OutcomeEnrollmentWeek: Codable, Sendable, Equatable {
    /// 0 for the week of enrollment (its first seven days).
    public var week: Int
    /// The share still journaling: an entry in this week or later.
    public var retention: OutcomeCell
    /// Per symptom (PROTOCOL.md §6.1), among the patients who wrote an entry that week: the
    /// share who reported it at least once.
    public var withdrawal: [OutcomeSymptom]

    public init(week: Int, retention: OutcomeCell, withdrawal: [OutcomeSymptom]) {
        self.week = week
        self.retention = retention
        self.withdrawal = withdrawal
    }
}

public struct OutcomeSymptom: Codable, Sendable, Equatable {
    public var symptom: String
    public var cell: OutcomeCell

    public init(symptom: String, cell: OutcomeCell) {
        self.symptom = symptom
        self.cell = cell
    }
}

/// One published figure. `suppressed`: it would describe 1 to `minimumCell − 1` patients,
/// directly or by difference with another published figure; then nothing else is given.
/// Otherwise `patients` (rounded) and the figure the cell's table names.
public struct OutcomeCell: Codable, Sendable, Equatable {
    public var suppressed: Bool
    /// Patients behind the figure, rounded to `countsRoundedTo`; nil when suppressed.
    public var patients: Int?
    public var mean: Double?
    public var median: Double?
    /// 0 to 1, to two decimals.
    public var share: Double?
    public var perPatient: Double?

    public init(suppressed: Bool, patients: Int? = nil, mean: Double? = nil, median: Double? = nil, share: Double? = nil, perPatient: Double? = nil) {
        self.suppressed = suppressed
        self.patients = patients
        self.mean = mean
        self.median = median
        self.share = share
        self.perPatient = perPatient
    }

    public static let hidden = OutcomeCell(suppressed: true)
}

import Foundation
import TandemCore
import TandemProtocol

/// What the dashboard page shows of one report: a chart and a table of the same figures
/// per section. Read by swift-mustache through its stored properties.
struct DashboardView {
    struct Cell {
        var text: String
        var suppressed: Bool
    }

    struct Row {
        var label: String
        var cells: [Cell]
    }

    /// One mentor whose caseload may be shown.
    struct Option {
        var value: String
        var label: String
        var selected: Bool
    }

    struct Section {
        var id: String
        var heading: String
        var explanation: String
        var svg: String
        var columns: [String]
        var rows: [Row]
    }

    var title = "Outcomes"
    var staff: String
    var csrf: String
    var message: String?
    var from: String
    var to: String
    var cohort: String
    var caseloads: [Option]
    var population: String
    var minimumCell: Int
    var roundedTo: Int
    var sections: [Section]

    init(_ report: OutcomeReport, mentors: [(id: MemberID, name: String)], asked: String?, staff: String, csrf: String, message: String?) {
        self.staff = staff
        self.csrf = csrf
        self.message = message
        from = report.from
        to = report.to
        cohort = report.cohort ?? ""
        // The caseload shown is selected: asked by id (the form) or by name (a link).
        // Mentors who share a name are told apart by the start of their member id, as
        // `tandem admin members` shows it.
        let names = mentors.reduce(into: [String: Int]()) { $0[$1.name, default: 0] += 1 }
        caseloads = mentors.map { mentor in
            Option(
                value: mentor.id.hex, label: names[mentor.name, default: 0] > 1 ? "\(mentor.name) (\(mentor.id.hex.prefix(8)))" : mentor.name,
                selected: report.caseload != nil && (asked == mentor.id.hex || asked == mentor.name))
        }
        population =
            if let cohort = report.cohort { "patients who enrolled in \(cohort)" } else if let caseload = report.caseload {
                "the patients in \(caseload)'s caseload at each week's end who consent to be counted (by week since enrollment: cohorts and the whole center only)"
            } else { "all patients who consent to be counted" }
        minimumCell = report.minimumCell
        roundedTo = report.countsRoundedTo
        let weeks = report.weeks.map(\.week)
        let sinceEnrollment = report.sinceEnrollment.map { "W\($0.week)" }
        var sections: [Section] = []

        sections.append(Section(
            id: "craving-mood", heading: "Craving and mood by week",
            explanation: "Each patient's mean for the week, then the mean and median over the patients who recorded it (0 to 10).",
            svg: DashboardCharts.chart(
                id: "chart-craving-mood", title: "Craving and mood by week",
                description: "Weekly mean craving and mood, 0 to 10; gaps are suppressed weeks. The table below gives every figure.",
                labels: weeks.map { String($0.dropFirst(5)) },
                series: [
                    .init(name: "craving (mean)", color: "#a8071a", values: report.weeks.map(\.craving.mean)),
                    .init(name: "mood (mean)", color: "#0b4f8a", dashed: true, values: report.weeks.map(\.mood.mean)),
                ], maximum: 10),
            columns: ["Week of", "Craving mean", "Craving median", "Mood mean", "Mood median", "Patients"],
            rows: report.weeks.map { week in
                Row(label: week.week, cells: [
                    Self.cell(week.craving, week.craving.mean.map(Self.tenths)), Self.cell(week.craving, week.craving.median.map(Self.tenths)),
                    Self.cell(week.mood, week.mood.mean.map(Self.tenths)), Self.cell(week.mood, week.mood.median.map(Self.tenths)),
                    Self.patients(week.craving),
                ])
            }))

        sections.append(Section(
            id: "adherence", heading: "Journaling by week",
            explanation: "The share of enrolled patients who wrote at least one entry that week.",
            svg: DashboardCharts.chart(
                id: "chart-adherence", title: "Journaling by week", description: "The share of patients who journaled, by week.",
                labels: weeks.map { String($0.dropFirst(5)) },
                series: [.init(name: "journaled", color: "#0b6e4f", values: report.weeks.map(\.adherence.share))], maximum: 1, percent: true, bars: true),
            columns: ["Week of", "Journaled", "Patients"],
            rows: report.weeks.map { week in
                Row(label: week.week, cells: [Self.cell(week.adherence, week.adherence.share.map(Self.percent)), Self.patients(week.adherence)])
            }))

        sections.append(Section(
            id: "contact", heading: "Mentor contact by week",
            explanation: "Mentor notes written about enrolled patients that week, per patient.",
            svg: DashboardCharts.chart(
                id: "chart-contact", title: "Mentor contact by week", description: "Mentor notes per patient, by week.",
                labels: weeks.map { String($0.dropFirst(5)) },
                series: [.init(name: "notes per patient", color: "#6b3fa0", values: report.weeks.map(\.contact.perPatient))],
                maximum: max(1, (report.weeks.compactMap(\.contact.perPatient).max() ?? 1).rounded(.up)), bars: true),
            columns: ["Week of", "Notes per patient", "Patients"],
            rows: report.weeks.map { week in
                Row(label: week.week, cells: [
                    Self.cell(week.contact, week.contact.perPatient.map { String(format: "%.2f", $0) }), Self.patients(week.contact),
                ])
            }))

        // Weeks since enrollment take in whole cohorts, which a caseload splits.
        guard report.caseload == nil else {
            self.sections = sections
            return
        }
        sections.append(Section(
            id: "retention", heading: "Still journaling, by week since enrollment",
            explanation: "Of the patients whose that week has ended, the share who wrote an entry in it or later. Week 0 is the week a patient enrolled; every consenting patient, whatever the range.",
            svg: DashboardCharts.chart(
                id: "chart-retention", title: "Still journaling, by week since enrollment",
                description: "The share of patients still journaling, by week since enrollment.", labels: sinceEnrollment,
                series: [.init(name: "still journaling", color: "#0b4f8a", values: report.sinceEnrollment.map(\.retention.share))],
                maximum: 1, percent: true),
            columns: ["Week since enrollment", "Still journaling", "Patients"],
            rows: report.sinceEnrollment.map { week in
                Row(label: "W\(week.week)", cells: [Self.cell(week.retention, week.retention.share.map(Self.percent)), Self.patients(week.retention)])
            }))

        // The chart follows the four symptoms most reported in the first week; the table has all.
        let first = report.sinceEnrollment.first?.withdrawal ?? []
        let shown = first.filter { $0.cell.share != nil }.sorted { ($0.cell.share ?? 0) > ($1.cell.share ?? 0) }.prefix(4).map(\.symptom)
        let colors = ["#a8071a", "#0b4f8a", "#0b6e4f", "#6b3fa0"]
        sections.append(Section(
            id: "withdrawal", heading: "Withdrawal symptoms, by week since enrollment",
            explanation: "Among patients who journaled that week, the share who reported each symptom at least once.",
            svg: DashboardCharts.chart(
                id: "chart-withdrawal", title: "Withdrawal symptoms, by week since enrollment",
                description: "The share reporting the symptoms most common in the first week, by week since enrollment.",
                labels: sinceEnrollment,
                series: shown.enumerated().map { index, symptom in
                    .init(name: symptom, color: colors[index % colors.count], dashed: index % 2 == 1, values: report.sinceEnrollment.map { week in
                        week.withdrawal.first { $0.symptom == symptom }?.cell.share
                    })
                }, maximum: 1, percent: true),
            columns: ["Symptom"] + sinceEnrollment,
            rows: Symptom.allCases.map { symptom in
                Row(label: symptom.rawValue, cells: report.sinceEnrollment.map { week in
                    let cell = week.withdrawal.first { $0.symptom == symptom.rawValue }?.cell ?? .hidden
                    return Self.cell(cell, cell.share.map(Self.percent))
                })
            }))
        self.sections = sections
    }

    static func cell(_ cell: OutcomeCell, _ text: String?) -> Cell {
        if cell.suppressed { return Cell(text: "suppressed", suppressed: true) }
        return Cell(text: text ?? "–", suppressed: false)
    }

    static func patients(_ cell: OutcomeCell) -> Cell {
        if cell.suppressed { return Cell(text: "suppressed", suppressed: true) }
        return Cell(text: cell.patients.map { "~\($0)" } ?? "–", suppressed: false)
    }

    static func tenths(_ value: Double) -> String { String(format: "%.1f", value) }
    static func percent(_ value: Double) -> String { "\(Int((value * 100).rounded()))%" }
}

import TandemCore
import TandemProtocol
import TandemStore

/// Maps what a patient's replica holds to one FHIR R4 Bundle of type `collection`
/// (`tandem export --fhir`). docs/fhir.md lists every element filled and every code used,
/// and says which codes are Tandem's own.
///
/// ```swift
/// let bundle = FHIRExport.bundle(try ExportContent(store: store, nowMillis: now))
/// ```
///
/// One record is one resource, its id the record's 32 hex digits and its `fullUrl` the
/// same 16 bytes as a `urn:uuid:`: a journal entry is one `Observation` (its metrics as
/// components), a consent one `Consent`, a note shared with the patient one `Communication`;
/// each entry of the accounting of disclosures is one `AuditEvent`.
enum FHIRExport {
    /// Tandem's own namespace, for what FHIR and its terminologies have no code for.
    static let namespace = "https://tandem.example.org/fhir"
    static let journalCodes = namespace + "/CodeSystem/journal"
    static let symptomCodes = namespace + "/CodeSystem/withdrawal-symptom"
    static let consentScopeCodes = namespace + "/CodeSystem/consent-scope"
    static let consentStatusCodes = namespace + "/CodeSystem/consent-status"
    static let noteCodes = namespace + "/CodeSystem/note"
    static let memberIDs = namespace + "/NamingSystem/member-id"
    static let recordIDs = namespace + "/NamingSystem/record-id"
    static let deviceIDs = namespace + "/NamingSystem/device-id"
    static let emergencyAccessIDs = namespace + "/NamingSystem/emergency-access-id"
    static let purposeExtension = namespace + "/StructureDefinition/consent-purpose"
    static let revokedExtension = namespace + "/StructureDefinition/consent-revoked"

    static let loinc = "http://loinc.org"
    static let ucum = "http://unitsofmeasure.org"
    static let actCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    static let participationType = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

    /// The HL7 DS4P labels every resource carries: restricted, 42 CFR Part 2, and no
    /// redisclosure without the patient's consent.
    static let securityLabels: [FHIR.Coding] = [
        FHIR.Coding(system: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", code: "R", display: "restricted"),
        FHIR.Coding(system: actCode, code: "42CFRPart2", display: "42 CFR Part2"),
        FHIR.Coding(system: actCode, code: "NORDSCLCD", display: "no redisclosure without consent directive"),
    ]

    static var meta: FHIR.Meta { FHIR.Meta(security: securityLabels) }

    /// The Bundle: the patient first, then journal entries (oldest first), consents
    /// (newest first), notes shared with the patient (by date), disclosures (in chain order).
    static func bundle(_ content: ExportContent) -> FHIR.Bundle {
        let patientURL = uuidURL(bytes: content.member?.bytes ?? content.replica.bytes)
        let patient = FHIR.Reference(reference: patientURL, display: content.name.nilIfEmpty)
        let held = Set(content.journal.map(\.id) + content.consents.map(\.consent.id))
        var entries = [
            FHIR.Bundle.Entry(
                fullUrl: patientURL,
                resource: .patient(FHIR.Patient(
                    id: content.member?.hex ?? content.replica.hex, meta: meta,
                    name: content.name.nilIfEmpty.map { [FHIR.HumanName(text: $0)] })))
        ]
        entries += content.journal.map { entry in
            FHIR.Bundle.Entry(fullUrl: uuidURL(bytes: entry.id.bytes), resource: .observation(observation(entry, patient: patient)))
        }
        entries += content.consents.map { granted in
            FHIR.Bundle.Entry(fullUrl: uuidURL(bytes: granted.consent.id.bytes), resource: .consent(consent(granted, patient: patient)))
        }
        entries += content.notes.map { shared in
            FHIR.Bundle.Entry(
                fullUrl: uuidURL(bytes: shared.note.id.bytes), resource: .communication(communication(shared, patient: patient)))
        }
        entries += content.disclosures.map { disclosure in
            // The entry's chain hash names it; a malformed one (never appended) falls back to its place.
            let bytes = TandemCore.bytes(hex: disclosure.hash).flatMap { $0.count == 32 ? Array($0.prefix(16)) : nil }
            return FHIR.Bundle.Entry(
                fullUrl: uuidURL(bytes: bytes ?? Array("tandem-disclosure-\(disclosure.sequence)".utf8)),
                resource: .auditEvent(auditEvent(disclosure, patient: patient, server: content.server, held: held)))
        }
        return FHIR.Bundle(meta: meta, type: "collection", timestamp: isoMillis(content.exportedMillis), entry: entries)
    }

    // MARK: Journal entries

    /// One journal entry as one Observation: mood, craving, hours slept, each symptom
    /// reported and each tag as a component; free text as notes.
    static func observation(_ entry: JournalEntry, patient: FHIR.Reference) -> FHIR.Observation {
        typealias Component = FHIR.Observation.Component
        var components: [Component] = []
        if let mood = entry.mood {
            components.append(Component(code: concept(journalCodes, "mood", "Mood, 0 (worst) to 10 (best)"), valueInteger: mood))
        }
        if let craving = entry.craving {
            components.append(Component(
                code: concept(journalCodes, "craving", "Craving, 0 (none) to 10 (overwhelming)"), valueInteger: craving))
        }
        if let hours = entry.hoursSlept {
            components.append(Component(
                code: concept(loinc, "93832-4", "Sleep duration"),
                valueQuantity: FHIR.Quantity(value: hours, unit: "h", system: ucum, code: "h")))
        }
        for symptom in entry.symptoms.sorted() {
            components.append(Component(code: concept(symptomCodes, symptom.rawValue, symptomDisplay(symptom)), valueBoolean: true))
        }
        for tag in entry.tags where !tag.isEmpty {
            components.append(Component(code: concept(journalCodes, "tag", "Free tag"), valueString: tag))
        }
        // The patient's own text, every value held (two or more: written concurrently).
        let notes = entry.text.filter { !$0.text.isEmpty }.map { FHIR.Annotation(text: $0.text, time: isoTime($0.id.timestamp)) }
        return FHIR.Observation(
            id: entry.id.hex, meta: meta, status: "final",
            category: [concept("http://terminology.hl7.org/CodeSystem/observation-category", "survey", "Survey")],
            code: FHIR.CodeableConcept(
                FHIR.Coding(system: journalCodes, code: "journal-entry", display: "Detox journal entry"), text: "Detox journal entry"),
            subject: patient, effectiveDateTime: entry.at?.description, component: components.isEmpty ? nil : components,
            note: notes.isEmpty ? nil : notes)
    }

    /// `runny nose` for `runny-nose`.
    static func symptomDisplay(_ symptom: Symptom) -> String {
        symptom.rawValue.split(separator: "-").joined(separator: " ")
    }

    // MARK: Consents

    static func consent(_ granted: ExportContent.GrantedConsent, patient: FHIR.Reference) -> FHIR.Consent {
        let consent = granted.consent
        var extensions: [FHIR.Extension] = []
        if let purpose = consent.purpose, !purpose.isEmpty {
            extensions.append(FHIR.Extension(url: purposeExtension, valueString: purpose))
        }
        if let revoked = consent.revokedMillis {
            extensions.append(FHIR.Extension(url: revokedExtension, valueDateTime: isoMillis(UInt64(max(0, revoked)))))
        }
        let recipient = FHIR.Reference(
            identifier: FHIR.Identifier(system: memberIDs, value: consent.recipient.hex),
            display: granted.recipient.map { "\($0.name) (\($0.role.rawValue))" })
        let scope = switch consent.scope {
        case .metrics: "Metrics: mood, craving, sleep, symptoms and when; no text or tags"
        case .journal: "The whole journal, text and tags included"
        case .aggregate: "Counted, de-identified, in the center's statistics"
        }
        // On hold is still the patient's active consent: the center's care-team rule, not
        // the patient, stops it, and it resumes if the recipient joins the team again.
        let status = granted.status == "active" || granted.status == "on-hold" ? "active" : "inactive"
        let statusDisplay = switch granted.status {
        case "active": "Active"
        case "revoked": "Revoked by the patient"
        case "expired": "Expired"
        default: "On hold: the recipient left the care team"
        }
        return FHIR.Consent(
            id: consent.id.hex,
            meta: FHIR.Meta(
                security: securityLabels, tag: [FHIR.Coding(system: consentStatusCodes, code: granted.status, display: statusDisplay)]),
            extension: extensions.isEmpty ? nil : extensions,
            status: status,
            scope: concept("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy", "Privacy Consent"),
            category: [FHIR.CodeableConcept(FHIR.Coding(system: loinc, code: "59284-0"))],
            patient: patient, dateTime: isoMillis(granted.grantedMillis), performer: [patient],
            policyRule: concept(actCode, "42CFRPart2", "42 CFR Part2"),
            provision: FHIR.Consent.Provision(
                type: "permit",
                period: FHIR.Period(
                    start: isoMillis(granted.grantedMillis), end: consent.expiresMillis.map { isoMillis(UInt64(max(0, $0))) }),
                actor: [FHIR.Consent.Actor(role: concept(participationType, "IRCP", "information recipient"), reference: recipient)],
                action: [concept("http://terminology.hl7.org/CodeSystem/consentaction", "access", "Access")],
                code: [concept(consentScopeCodes, consent.scope.rawValue, scope)]))
    }

    // MARK: Notes shared with the patient

    /// A mentor's note shared with the patient, as the mentor's communication to them.
    static func communication(_ shared: ExportContent.SharedNote, patient: FHIR.Reference) -> FHIR.Communication {
        let note = shared.note
        let payload = note.text.filter { !$0.text.isEmpty }.map { FHIR.Communication.Payload(contentString: $0.text) }
            + note.followUps.filter { !$0.isEmpty }.map { FHIR.Communication.Payload(contentString: "Follow-up: \($0)") }
        let sender = FHIR.Reference(
            identifier: FHIR.Identifier(system: memberIDs, value: shared.author.hex),
            display: shared.authorEntry.map { "\($0.name) (\($0.role.rawValue))" })
        return FHIR.Communication(
            id: note.id.hex, meta: meta, status: "completed",
            category: [concept(noteCodes, "shared-note", "Peer mentor's note shared with the patient")],
            subject: patient, recipient: [patient], sender: sender, sent: note.date?.description,
            payload: payload.isEmpty ? nil : payload,
            // Someone else's record: the notice of 42 CFR §2.32 goes with it.
            note: [FHIR.Annotation(text: partTwoNotice)])
    }

    // MARK: Accounting of disclosures

    /// One entry of the patient's chain: who received which records, when, on which
    /// device, in which scope, under which consent (or emergency access), and its link.
    static func auditEvent(_ entry: DisclosureEntry, patient: FHIR.Reference, server: String?, held: Set<RecordID>) -> FHIR.AuditEvent {
        let emergency = entry.scope == DisclosureScope.emergency ? entry.emergency : nil
        let recipientName = entry.recipientName.map { name in entry.recipientRole.map { "\(name) (\($0))" } ?? name }
        var agents = [
            FHIR.AuditEvent.Agent(
                type: emergency == nil ? concept(participationType, "IRCP", "information recipient") : nil,
                who: FHIR.Reference(identifier: FHIR.Identifier(system: memberIDs, value: entry.recipient), display: recipientName),
                requestor: true)
        ]
        if let emergency {
            // §2.51: the medical personnel the records went to, and where.
            agents.append(FHIR.AuditEvent.Agent(
                type: concept(participationType, "IRCP", "information recipient"),
                who: FHIR.Reference(display: "\(emergency.recipient), \(emergency.facility)"), requestor: false))
        }
        if let device = entry.device {
            agents.append(FHIR.AuditEvent.Agent(
                who: FHIR.Reference(identifier: FHIR.Identifier(system: deviceIDs, value: device), display: entry.deviceName?.nilIfEmpty),
                requestor: false))
        }

        var details = [
            FHIR.AuditEvent.Detail(type: "scope", valueString: entry.scope),
            FHIR.AuditEvent.Detail(type: "accounting-sequence", valueString: String(entry.sequence)),
            FHIR.AuditEvent.Detail(type: "accounting-previous", valueString: entry.previous),
            FHIR.AuditEvent.Detail(type: "accounting-hash", valueString: entry.hash),
        ].filter { !$0.valueString.isEmpty }
        if let emergency, !emergency.reason.isEmpty {
            details.append(FHIR.AuditEvent.Detail(type: "emergency-reason", valueString: emergency.reason))
        }
        var entities = [
            FHIR.AuditEvent.Entity(
                what: patient, type: FHIR.Coding(system: entityTypes, code: "1", display: "Person"),
                role: FHIR.Coding(system: objectRoles, code: "1", display: "Patient"), detail: details.isEmpty ? nil : details)
        ]
        entities += entry.records.map { record in
            FHIR.AuditEvent.Entity(
                what: reference(record, held: held), type: FHIR.Coding(system: entityTypes, code: "2", display: "System Object"),
                role: FHIR.Coding(system: objectRoles, code: "4", display: "Domain Resource"))
        }
        if let consent = entry.consent {
            // Under emergency access, `consent` names the access, not a consent (PROTOCOL.md §9.17).
            entities.append(entry.scope != DisclosureScope.emergency
                ? FHIR.AuditEvent.Entity(
                    what: reference(consent, held: held), type: FHIR.Coding(system: entityTypes, code: "2", display: "System Object"),
                    description: "The consent the records were disclosed under")
                : FHIR.AuditEvent.Entity(
                    what: FHIR.Reference(identifier: FHIR.Identifier(system: emergencyAccessIDs, value: consent)),
                    type: FHIR.Coding(system: entityTypes, code: "2", display: "System Object"),
                    description: "The emergency access (42 CFR 2.51) the records were read under"))
        }
        return FHIR.AuditEvent(
            id: "disclosure-\(entry.sequence)", meta: meta,
            type: FHIR.Coding(system: "http://dicom.nema.org/resources/ontology/DCM", code: "110106", display: "Export"),
            action: "R", recorded: isoMillis(UInt64(max(0, entry.at))), outcome: "0",
            purposeOfEvent: entry.scope == DisclosureScope.emergency
                ? [concept("http://terminology.hl7.org/CodeSystem/v3-ActReason", "ETREAT", "Emergency Treatment")] : nil,
            agent: agents,
            source: FHIR.AuditEvent.Source(
                observer: FHIR.Reference(
                    identifier: server.flatMap { $0.nilIfEmpty }.map { FHIR.Identifier(system: "urn:ietf:rfc:3986", value: $0) },
                    display: "The care center's Tandem server"),
                type: [FHIR.Coding(system: sourceTypes, code: "4", display: "Application Server")]),
            entity: entities)
    }

    static let entityTypes = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
    static let objectRoles = "http://terminology.hl7.org/CodeSystem/object-role"
    static let sourceTypes = "http://terminology.hl7.org/CodeSystem/security-source-type"

    // MARK: Helpers

    /// A record of this Bundle by its `urn:uuid:`, any other (deleted since) by its id.
    static func reference(_ hex: String, held: Set<RecordID>) -> FHIR.Reference {
        guard let id = try? RecordID(hex: hex), held.contains(id) else {
            return FHIR.Reference(identifier: FHIR.Identifier(system: recordIDs, value: hex))
        }
        return FHIR.Reference(reference: uuidURL(bytes: id.bytes))
    }

    static func concept(_ system: String, _ code: String, _ display: String) -> FHIR.CodeableConcept {
        FHIR.CodeableConcept(FHIR.Coding(system: system, code: code, display: display))
    }

    /// `urn:uuid:` and 16 bytes as 8-4-4-4-12 lowercase hexadecimal digits (any other
    /// length: the first 16 bytes of their SHA-256).
    static func uuidURL(bytes: [UInt8]) -> String {
        let digits = Array(hexString(bytes.count == 16 ? bytes : Array(SHA256Digest.hash(bytes).prefix(16))))
        guard digits.count == 32 else { return "urn:uuid:00000000-0000-0000-0000-000000000000" }
        let groups = [digits[0..<8], digits[8..<12], digits[12..<16], digits[16..<20], digits[20..<32]]
        return "urn:uuid:" + groups.map { String($0) }.joined(separator: "-")
    }
}

/// The parts of FHIR R4 (4.0.1) that `tandem export --fhir` writes, as typed values:
/// only the elements the mapping in docs/fhir.md fills. An optional left nil is left out
/// of the JSON, and every array is nil rather than empty (FHIR allows no empty arrays).
///
/// ```swift
/// let coding = FHIR.Coding(system: "http://loinc.org", code: "93832-4", display: "Sleep duration")
/// ```
enum FHIR {
    // MARK: Data types

    struct Coding: Encodable, Hashable {
        var system: String
        var code: String
        var display: String?
    }

    struct CodeableConcept: Encodable {
        var coding: [Coding]?
        var text: String?

        init(_ coding: Coding, text: String? = nil) {
            self.coding = [coding]
            self.text = text
        }
    }

    struct Meta: Encodable {
        var security: [Coding]
        var tag: [Coding]?
    }

    struct Identifier: Encodable {
        var system: String
        var value: String
    }

    struct Reference: Encodable {
        /// `urn:uuid:…` of an entry of the same Bundle.
        var reference: String?
        var identifier: Identifier?
        var display: String?
    }

    struct Period: Encodable {
        var start: String?
        var end: String?
    }

    struct Quantity: Encodable {
        var value: Double
        var unit: String
        var system: String
        var code: String
    }

    struct Annotation: Encodable {
        var text: String
        var time: String?
    }

    struct HumanName: Encodable {
        var text: String
    }

    struct Extension: Encodable {
        var url: String
        var valueString: String?
        var valueDateTime: String?
    }

    // MARK: Resources

    struct Patient: Encodable {
        let resourceType = "Patient"
        var id: String
        var meta: Meta
        var name: [HumanName]?
    }

    struct Observation: Encodable {
        let resourceType = "Observation"
        var id: String
        var meta: Meta
        var status: String
        var category: [CodeableConcept]
        var code: CodeableConcept
        var subject: Reference
        var effectiveDateTime: String?
        var component: [Component]?
        var note: [Annotation]?

        struct Component: Encodable {
            var code: CodeableConcept
            var valueInteger: Int?
            var valueQuantity: Quantity?
            var valueBoolean: Bool?
            var valueString: String?
        }
    }

    struct Consent: Encodable {
        let resourceType = "Consent"
        var id: String
        var meta: Meta
        var `extension`: [Extension]?
        var status: String
        var scope: CodeableConcept
        var category: [CodeableConcept]
        var patient: Reference
        var dateTime: String?
        var performer: [Reference]?
        var policyRule: CodeableConcept
        var provision: Provision

        struct Provision: Encodable {
            var type: String
            var period: Period?
            var actor: [Actor]
            var action: [CodeableConcept]?
            var code: [CodeableConcept]?
        }

        struct Actor: Encodable {
            var role: CodeableConcept
            var reference: Reference
        }
    }

    struct AuditEvent: Encodable {
        let resourceType = "AuditEvent"
        var id: String
        var meta: Meta
        var type: Coding
        var action: String
        var recorded: String
        var outcome: String
        var purposeOfEvent: [CodeableConcept]?
        var agent: [Agent]
        var source: Source
        var entity: [Entity]?

        struct Agent: Encodable {
            var type: CodeableConcept?
            var who: Reference?
            var name: String?
            var requestor: Bool
        }

        struct Source: Encodable {
            var observer: Reference
            var type: [Coding]?
        }

        struct Entity: Encodable {
            var what: Reference?
            var type: Coding?
            var role: Coding?
            var description: String?
            var detail: [Detail]?
        }

        struct Detail: Encodable {
            var type: String
            var valueString: String
        }
    }

    struct Communication: Encodable {
        let resourceType = "Communication"
        var id: String
        var meta: Meta
        var status: String
        var category: [CodeableConcept]?
        var subject: Reference
        var recipient: [Reference]?
        var sender: Reference?
        var sent: String?
        var payload: [Payload]?
        var note: [Annotation]?

        struct Payload: Encodable {
            var contentString: String
        }
    }

    /// One resource of a Bundle, encoded as the resource itself.
    enum Resource: Encodable {
        case patient(Patient)
        case observation(Observation)
        case consent(Consent)
        case auditEvent(AuditEvent)
        case communication(Communication)

        func encode(to encoder: any Encoder) throws {
            switch self {
            case .patient(let resource): try resource.encode(to: encoder)
            case .observation(let resource): try resource.encode(to: encoder)
            case .consent(let resource): try resource.encode(to: encoder)
            case .auditEvent(let resource): try resource.encode(to: encoder)
            case .communication(let resource): try resource.encode(to: encoder)
            }
        }
    }

    struct Bundle: Encodable {
        let resourceType = "Bundle"
        var meta: Meta
        var type: String
        /// When the Bundle was assembled (an instant).
        var timestamp: String
        var entry: [Entry]?

        struct Entry: Encodable {
            /// `urn:uuid:…`, unique in the Bundle.
            var fullUrl: String
            var resource: Resource
        }
    }
}

"""A deterministic synthetic corpus of English, French and Spanish records about seized live animals.

``make_records(rng, count, parties, taxa)`` yields the registry's model objects, ready to add to a
session: about 3 KB of title, summary, translations and type-specific text per record, every one of
the nine record types, about 15 % of records above the public tier, and 1 % carrying a file whose
extracted text is 50 KB long. The same seed always gives the same records, ids included.

The text is made from sentence templates filled from per-language word lists (animals, handling
steps, facilities, officials, risks, places, legal instruments) plus a long tail of made-up proper
names, so the index has both very common domain terms and thousands of rare ones, as a real
registry would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from registry.models import MODEL_FOR_TYPE, File, Party, Record, RecordTranslation, Taxon
from registry.vocab import (
    AGREEMENT_TYPES,
    AUDIENCES,
    DISPOSAL_OPTIONS,
    FACILITY_TYPES,
    GUIDANCE_AREAS,
    GUIDANCE_KINDS,
    INSTRUMENT_TYPES,
    OWNERSHIP,
    RECORD_TYPES,
    REGIONS,
    SERVICES,
    STAGES,
)

RECORD_CHARS = 3000
FILE_CHARS = 50_000
FILE_SHARE = 0.01
# Tiers above public: 10 % for registered users, 5 % confidential.
TIER_WEIGHTS = {"public": 85, "registered": 10, "confidential": 5}
LANGUAGE_WEIGHTS = {"en": 50, "fr": 25, "es": 25}
TRANSLATION_SHARE = 0.3
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


@dataclass(frozen=True)
class Lexicon:
    """The words and sentence shapes of one language."""

    animals: tuple[str, ...]
    animal: tuple[str, ...]
    steps: tuple[str, ...]
    facilities: tuple[str, ...]
    actors: tuple[str, ...]
    risks: tuple[str, ...]
    places: tuple[str, ...]
    instruments: tuple[str, ...]
    sentences: tuple[str, ...]
    titles: dict[str, tuple[str, ...]] = field(default_factory=dict)


EN = Lexicon(
    animals=(
        "parrots", "African grey parrots", "macaws", "cockatoos", "tortoises", "radiated tortoises",
        "freshwater turtles", "primates", "chimpanzees", "orangutans", "slow lorises", "marmosets",
        "gibbons", "pangolins", "iguanas", "chameleons", "pythons", "monitor lizards", "songbirds",
        "geckos", "seahorses", "live eels", "hornbills", "birds of prey",
    ),
    animal=("parrot", "tortoise", "primate", "pangolin", "chimpanzee", "macaw", "iguana", "loris", "turtle"),
    steps=(
        "quarantine", "veterinary care", "temporary holding", "identification", "transport",
        "rehabilitation", "release to the wild", "repatriation", "disease screening", "euthanasia",
        "long-term care", "placement", "behavioural assessment", "marking and registration",
    ),
    facilities=(
        "rescue centre", "sanctuary", "quarantine station", "rehabilitation centre", "zoo",
        "temporary holding facility", "wildlife hospital", "rescue center",
    ),
    actors=(
        "customs officers", "police officers", "wildlife inspectors", "border guards", "prosecutors",
        "veterinarians", "Management Authority staff", "park rangers", "airport security staff",
        "enforcement officers", "keepers",
    ),
    risks=(
        "psittacosis", "avian influenza", "herpes B virus", "tuberculosis", "salmonella", "parasites",
        "Newcastle disease", "ranavirus", "zoonotic pathogens", "dehydration", "stress-related injuries",
    ),
    places=(
        "the international airport", "the container port", "a land border crossing",
        "a postal sorting centre", "a roadside checkpoint", "a pet market", "the ferry terminal",
        "a courier depot",
    ),
    instruments=(
        "national law", "ministerial order", "decree", "regulation", "circular", "action plan",
        "standard operating procedure", "memorandum of understanding",
    ),
    sentences=(
        "{Actors} seized {n} live {animals} at {place} and transferred them to a {facility} the same day.",
        "Seized {animals} must undergo {step} before any decision on their final disposal is taken.",
        "During quarantine the {animals} are kept apart from resident animals and screened for {risk}.",
        "The {instrument} sets out how {actors} handle the confiscation of live {animals} and who bears "
        "the costs of {step}.",
        "Veterinary staff at the {facility} in {Name} record the condition of each {animal} within {n} "
        "hours of arrival.",
        "Where return to the wild is not possible, the {animals} are placed with an accredited {facility} "
        "or repatriated to the State of origin.",
        "Rescue centres report on the {step} of confiscated {animals} to the Management Authority every "
        "{n} months.",
        "Illegal trade in {animals} through {place} has grown since {year}, and {actors} have asked for "
        "more capacity for {step}.",
        "Evidence from the seizure is kept under a chain of custody until the court in {Name} decides "
        "on the case.",
        "Training for {actors} covers the identification of protected species, safe handling of "
        "{animals} and {step}.",
        "Euthanasia is considered only when {risk} cannot be controlled and a veterinarian has examined "
        "the {animal}.",
        "The agreement between {Name} and the {facility} covers food, housing and {step} for the "
        "{animals}.",
        "Smuggled {animals} are often hidden in luggage or parcels, so {actors} need clear guidance on "
        "{step}.",
        "A protected {animal} seized in {Name} in {year} was returned to its range State after {n} weeks "
        "of {step}.",
        "The {facility} of {Name} can hold up to {n} {animals} and offers {step} and {step2}.",
    ),
    titles={
        "action_plan": ("National action plan for seized live {animals} {year}–{year2}",
                        "Action plan on the disposal of confiscated {animals} in {Name}"),
        "protocol": ("Protocol for the {step} of confiscated {animals}",
                     "Protocol on {step} after the seizure of live {animals}"),
        "regulatory_measure": ("{Instrument} on the disposal of seized live {animals}",
                               "{Instrument} No. {n}/{year} on confiscated wildlife"),
        "sop": ("Standard operating procedure: {step} of seized {animals} at {place}",
                "SOP for {actors}: {step} of live {animals}"),
        "species_guidance": ("Care guidelines for confiscated {animals}",
                             "Husbandry and {step} of seized {animals}"),
        "general_guidance": ("Guidelines on {step} for {actors}",
                             "Training manual: handling seized live animals and {step}"),
        "network": ("{Name} network of rescue centres", "Regional rescue centre network for {animals}"),
        "rescue_centre": ("{Name} {facility}", "{facility} for {animals} in {Name}"),
        "agreement": ("Placement agreement for {animals} with the {Name} {facility}",
                      "Agreement on the transfer of confiscated {animals} to {Name}"),
    },
)

FR = Lexicon(
    animals=(
        "perroquets", "perroquets gris du Gabon", "aras", "cacatoès", "tortues", "tortues radiées",
        "tortues d'eau douce", "primates", "chimpanzés", "orangs-outans", "loris lents", "ouistitis",
        "gibbons", "pangolins", "iguanes", "caméléons", "pythons", "varans", "oiseaux chanteurs",
        "geckos", "hippocampes", "anguilles vivantes", "calaos", "rapaces",
    ),
    animal=("perroquet", "tortue", "primate", "pangolin", "chimpanzé", "ara", "iguane", "loris", "caméléon"),
    steps=(
        "quarantaine", "soins vétérinaires", "détention temporaire", "identification", "transport",
        "réhabilitation", "remise en liberté", "rapatriement", "dépistage sanitaire", "euthanasie",
        "soins de longue durée", "placement", "évaluation comportementale", "marquage et enregistrement",
    ),
    facilities=(
        "centre de sauvetage", "sanctuaire", "station de quarantaine", "centre de réhabilitation", "zoo",
        "structure de détention temporaire", "hôpital de la faune", "refuge",
    ),
    actors=(
        "agents des douanes", "policiers", "inspecteurs de la faune", "gardes-frontières", "procureurs",
        "vétérinaires", "agents de l'organe de gestion", "écogardes", "agents de sûreté aéroportuaire",
        "agents de lutte contre la fraude", "soigneurs",
    ),
    risks=(
        "psittacose", "influenza aviaire", "virus herpès B", "tuberculose", "salmonellose", "parasites",
        "maladie de Newcastle", "ranavirus", "agents zoonotiques", "déshydratation",
        "blessures dues au stress",
    ),
    places=(
        "l'aéroport international", "le port à conteneurs", "un poste-frontière terrestre",
        "un centre de tri postal", "un contrôle routier", "un marché aux animaux", "la gare maritime",
        "un dépôt de messagerie",
    ),
    instruments=(
        "loi nationale", "arrêté ministériel", "décret", "règlement", "circulaire", "plan d'action",
        "procédure opérationnelle normalisée", "protocole d'accord",
    ),
    sentences=(
        "Les {actors} ont saisi {n} {animals} vivants à {place} et les ont transférés le jour même vers "
        "un {facility}.",
        "Après la saisie, les {animals} doivent faire l'objet de {step} avant toute décision sur leur "
        "sort final.",
        "Pendant la quarantaine, les {animals} sont séparés des animaux résidents et soumis à un "
        "dépistage de {risk}.",
        "Le texte ({instrument}) précise comment les {actors} gèrent la confiscation des {animals} "
        "vivants et qui prend en charge les frais de {step}.",
        "Le personnel vétérinaire du {facility} de {Name} consigne l'état de chaque {animal} dans les {n} "
        "heures suivant son arrivée.",
        "Lorsque le retour dans la nature est impossible, les {animals} sont confiés à un {facility} "
        "agréé ou rapatriés vers l'État d'origine.",
        "Les centres de sauvetage rendent compte de {step} des {animals} confisqués à l'organe de gestion "
        "tous les {n} mois.",
        "Le commerce illégal de {animals} via {place} a augmenté depuis {year} ; les {actors} demandent "
        "davantage de moyens pour {step}.",
        "Les éléments de preuve de la saisie sont conservés sous une chaîne de possession jusqu'à la "
        "décision du tribunal de {Name}.",
        "La formation des {actors} porte sur l'identification des espèces protégées, la manipulation "
        "des {animals} et {step}.",
        "L'euthanasie n'est envisagée que si {risk} ne peut être maîtrisé et qu'un vétérinaire a "
        "examiné l'animal ({animal}).",
        "La convention entre {Name} et le {facility} couvre la nourriture, l'hébergement et {step} des "
        "{animals}.",
        "Les {animals} de contrebande sont souvent cachés dans des bagages ou des colis : les {actors} "
        "ont besoin de consignes claires sur {step}.",
        "Un {animal} protégé saisi à {Name} en {year} a été renvoyé dans son État de l'aire de "
        "répartition après {n} semaines de {step}.",
        "Le {facility} de {Name} peut accueillir jusqu'à {n} {animals} et assure {step} et {step2}.",
    ),
    titles={
        "action_plan": ("Plan d'action national pour les {animals} vivants saisis {year}–{year2}",
                        "Plan d'action sur le sort des {animals} confisqués à {Name}"),
        "protocol": ("Protocole de {step} des {animals} confisqués",
                     "Protocole relatif à {step} après la saisie de {animals} vivants"),
        "regulatory_measure": ("{Instrument} relatif au sort des {animals} vivants saisis",
                               "{Instrument} n° {n}/{year} sur la faune confisquée"),
        "sop": ("Procédure opérationnelle normalisée : {step} des {animals} saisis à {place}",
                "PON pour les {actors} : {step} des {animals} vivants"),
        "species_guidance": ("Lignes directrices pour les soins aux {animals} confisqués",
                             "Entretien et {step} des {animals} saisis"),
        "general_guidance": ("Lignes directrices sur {step} à l'intention des {actors}",
                             "Manuel de formation : manipulation des animaux vivants saisis et {step}"),
        "network": ("Réseau de centres de sauvetage de {Name}",
                    "Réseau régional de centres de sauvetage pour {animals}"),
        "rescue_centre": ("{Facility} de {Name}", "{Facility} pour {animals} à {Name}"),
        "agreement": ("Convention de placement de {animals} avec le {facility} de {Name}",
                      "Accord sur le transfert de {animals} confisqués à {Name}"),
    },
)

ES = Lexicon(
    animals=(
        "loros", "loros grises africanos", "guacamayas", "cacatúas", "tortugas", "tortugas estrelladas",
        "tortugas de agua dulce", "primates", "chimpancés", "orangutanes", "loris perezosos", "titíes",
        "gibones", "pangolines", "iguanas", "camaleones", "pitones", "varanos", "aves canoras",
        "gecos", "caballitos de mar", "anguilas vivas", "cálaos", "aves rapaces",
    ),
    animal=(
        "loro", "tortuga", "primate", "pangolín", "chimpancé", "guacamaya", "iguana", "loris", "camaleón",
    ),
    steps=(
        "cuarentena", "atención veterinaria", "custodia temporal", "identificación", "transporte",
        "rehabilitación", "liberación al medio silvestre", "repatriación", "detección de enfermedades",
        "eutanasia", "cuidado a largo plazo", "reubicación", "evaluación del comportamiento",
        "marcaje y registro",
    ),
    facilities=(
        "centro de rescate", "santuario", "estación de cuarentena", "centro de rehabilitación", "zoológico",
        "instalación de custodia temporal", "hospital de fauna", "albergue",
    ),
    actors=(
        "funcionarios de aduanas", "policías", "inspectores de fauna", "guardias fronterizos", "fiscales",
        "veterinarios", "funcionarios de la autoridad administrativa", "guardaparques",
        "agentes de seguridad aeroportuaria", "agentes de observancia", "cuidadores",
    ),
    risks=(
        "psitacosis", "influenza aviar", "virus del herpes B", "tuberculosis", "salmonelosis", "parásitos",
        "enfermedad de Newcastle", "ranavirus", "patógenos zoonóticos", "deshidratación",
        "lesiones por estrés",
    ),
    places=(
        "el aeropuerto internacional", "el puerto de contenedores", "un paso fronterizo terrestre",
        "un centro de clasificación postal", "un control de carretera", "un mercado de mascotas",
        "la terminal de transbordadores", "un depósito de mensajería",
    ),
    instruments=(
        "ley nacional", "resolución ministerial", "decreto", "reglamento", "circular", "plan de acción",
        "procedimiento operativo estándar", "memorando de entendimiento",
    ),
    sentences=(
        "Los {actors} decomisaron {n} {animals} vivos en {place} y los trasladaron ese mismo día a un "
        "{facility}.",
        "Tras el decomiso, los {animals} deben pasar por {step} antes de decidir su destino final.",
        "Durante la cuarentena los {animals} se mantienen separados de los animales residentes y se "
        "examinan para detectar {risk}.",
        "La norma ({instrument}) establece cómo los {actors} gestionan la confiscación de {animals} vivos "
        "y quién asume los costos de {step}.",
        "El personal veterinario del {facility} de {Name} registra el estado de cada {animal} en las {n} "
        "horas siguientes a su llegada.",
        "Cuando la reintroducción no es posible, los {animals} se entregan a un {facility} acreditado o "
        "se repatrían al Estado de origen.",
        "Los centros de rescate informan sobre la {step} de los {animals} decomisados a la autoridad "
        "administrativa cada {n} meses.",
        "El comercio ilegal de {animals} a través de {place} ha crecido desde {year}, y los {actors} "
        "piden más capacidad de {step}.",
        "Las pruebas del decomiso se conservan bajo cadena de custodia hasta que el tribunal de {Name} "
        "resuelve el caso.",
        "La capacitación de los {actors} abarca la identificación de especies protegidas, el manejo "
        "seguro de {animals} y la {step}.",
        "La eutanasia solo se considera cuando no es posible controlar {risk} y un veterinario ha "
        "examinado al animal ({animal}).",
        "El acuerdo entre {Name} y el {facility} cubre alimentación, alojamiento y {step} de los "
        "{animals}.",
        "Los {animals} de contrabando suelen ocultarse en equipajes o paquetes, por lo que los {actors} "
        "necesitan pautas claras sobre {step}.",
        "Un ejemplar protegido ({animal}) decomisado en {Name} en {year} fue devuelto a su Estado del "
        "área de distribución tras {n} semanas de {step}.",
        "El {facility} de {Name} puede albergar hasta {n} {animals} y ofrece {step} y {step2}.",
    ),
    titles={
        "action_plan": ("Plan de acción nacional para {animals} vivos decomisados {year}–{year2}",
                        "Plan de acción sobre el destino de {animals} confiscados en {Name}"),
        "protocol": ("Protocolo de {step} de {animals} decomisados",
                     "Protocolo sobre {step} tras el decomiso de {animals} vivos"),
        "regulatory_measure": ("{Instrument} sobre el destino de {animals} vivos decomisados",
                               "{Instrument} n.º {n}/{year} sobre fauna confiscada"),
        "sop": ("Procedimiento operativo estándar: {step} de {animals} decomisados en {place}",
                "POE para {actors}: {step} de {animals} vivos"),
        "species_guidance": ("Directrices para el cuidado de {animals} confiscados",
                             "Manejo y {step} de {animals} decomisados"),
        "general_guidance": ("Directrices sobre {step} para {actors}",
                             "Manual de capacitación: manejo de animales vivos decomisados y {step}"),
        "network": ("Red de centros de rescate de {Name}",
                    "Red regional de centros de rescate para {animals}"),
        "rescue_centre": ("{Facility} de {Name}", "{Facility} para {animals} en {Name}"),
        "agreement": ("Convenio de reubicación de {animals} con el {facility} de {Name}",
                      "Acuerdo sobre la transferencia de {animals} decomisados a {Name}"),
    },
)

LEXICONS = {"en": EN, "fr": FR, "es": ES}

# Syllables of the made-up place, person and organisation names (the long tail of the vocabulary).
_SYLLABLES = (
    "ba ka lo mi ra tu zé ño ri an bel cor dú fa gui hé ja lé mon né pé qui sol ta vé xi yo "
    "ma ndo ku sa bé rü çe ol ar ven tlá ich ago sur mé"
).split()


def make_names(rng: random.Random, count: int) -> list[str]:
    """``count`` made-up proper names such as "Bélmonta" or "Kuñoar"."""
    names = set()
    while len(names) < count:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        names.add(word[0].upper() + word[1:])
    return sorted(names)


class Writer:
    """Fills sentence and title templates of one language with random words."""

    def __init__(self, rng: random.Random, names: list[str]) -> None:
        self.rng = rng
        self.names = names

    def _slots(self, lexicon: Lexicon) -> dict[str, str]:
        rng = self.rng
        step, step2 = rng.sample(lexicon.steps, 2)
        facility = rng.choice(lexicon.facilities)
        instrument = rng.choice(lexicon.instruments)
        actors = rng.choice(lexicon.actors)
        name = rng.choice(self.names)
        year = rng.randint(1995, 2024)
        return {
            "animals": rng.choice(lexicon.animals),
            "animal": rng.choice(lexicon.animal),
            "step": step,
            "step2": step2,
            "facility": facility,
            "Facility": facility[0].upper() + facility[1:],
            "actors": actors,
            "Actors": actors[0].upper() + actors[1:],
            "risk": rng.choice(lexicon.risks),
            "place": rng.choice(lexicon.places),
            "instrument": instrument,
            "Instrument": instrument[0].upper() + instrument[1:],
            "Name": name,
            "n": str(rng.randint(2, 480)),
            "year": str(year),
            "year2": str(year + rng.randint(3, 10)),
        }

    def sentence(self, language: str) -> str:
        """One sentence in ``language``."""
        lexicon = LEXICONS[language]
        return self.rng.choice(lexicon.sentences).format(**self._slots(lexicon))

    def text(self, language: str, chars: int) -> str:
        """Sentences in ``language`` until about ``chars`` characters, in paragraphs of a few sentences."""
        paragraphs: list[str] = []
        sentences: list[str] = []
        size = 0
        while size < chars:
            sentence = self.sentence(language)
            sentences.append(sentence)
            size += len(sentence) + 1
            if len(sentences) >= self.rng.randint(3, 6):
                paragraphs.append(" ".join(sentences))
                sentences = []
        if sentences:
            paragraphs.append(" ".join(sentences))
        return "\n\n".join(paragraphs)

    def title(self, language: str, record_type: str) -> str:
        """A title for a record of ``record_type`` in ``language``."""
        lexicon = LEXICONS[language]
        return self.rng.choice(lexicon.titles[record_type]).format(**self._slots(lexicon))

    def short(self, language: str) -> str:
        """A short name of an agency, author or publisher, e.g. "Customs officers Bélmonta"."""
        lexicon = LEXICONS[language]
        return f"{self.rng.choice(lexicon.actors).capitalize()} {self.rng.choice(self.names)}"


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _some(rng: random.Random, values: tuple[str, ...], low: int = 1, high: int = 4) -> list[str]:
    return sorted(rng.sample(values, rng.randint(low, min(high, len(values)))))


def _date(rng: random.Random, year: int) -> dt.date:
    return dt.date(year, rng.randint(1, 12), rng.randint(1, 28))


def _id(rng: random.Random, prefix: str) -> str:
    """An id of the shape ``registry.models.new_id`` makes, but drawn from ``rng`` (reproducible)."""
    return prefix + "".join(rng.choice(_ALPHABET) for _ in range(12))


def _details(
    rng: random.Random, writer: Writer, record_type: str, language: str, year: int, budget: int
) -> dict[str, Any]:
    """Type-specific details of a record; its long text fields take about ``budget`` characters."""
    short = writer.short
    if record_type == "action_plan":
        details = {
            "lead_agency": short(language),
            "participating_agencies": [short(language) for _ in range(rng.randint(1, 4))],
            "stages": _some(rng, STAGES, 2, 6),
            "disposal_options": _some(rng, DISPOSAL_OPTIONS, 1, 4),
            "period_start": year,
            "period_end": year + rng.randint(3, 10),
        }
        return details
    if record_type == "protocol":
        details = {
            "responsible_agency": short(language),
            "stages": _some(rng, STAGES, 1, 4),
            "procedures": writer.text(language, budget),
        }
        return details
    if record_type == "regulatory_measure":
        details = {
            "instrument_type": rng.choice(INSTRUMENT_TYPES),
            "reference": f"No. {rng.randint(1, 999)}/{year}",
            "authority": short(language),
            "in_force_from": _date(rng, year),
            "provisions": writer.text(language, budget),
        }
        return details
    if record_type == "sop":
        details = {
            "agency": short(language),
            "stages": _some(rng, STAGES, 1, 3),
            "version": f"{rng.randint(1, 5)}.{rng.randint(0, 9)}",
            "review_date": _date(rng, min(year + 2, 2026)),
        }
        return details
    if record_type == "species_guidance":
        return {"author": short(language), "guidance_areas": _some(rng, GUIDANCE_AREAS, 1, 5)}
    if record_type == "general_guidance":
        details = {
            "kind": rng.choice(GUIDANCE_KINDS),
            "publisher": short(language),
            "audience": _some(rng, AUDIENCES, 1, 4),
        }
        return details
    if record_type == "network":
        details = {
            "coordinator": short(language),
            "coverage": writer.text(language, budget),
            "coverage_regions": _some(rng, REGIONS, 1, 3),
            "website": f"https://network-{rng.randint(1, 10_000)}.example.org",
        }
        return details
    if record_type == "rescue_centre":
        details = {
            "facility_type": rng.choice(FACILITY_TYPES),
            "operator": short(language),
            "city": rng.choice(writer.names),
            "subnational_region": rng.choice(writer.names),
            "address": f"{rng.randint(1, 300)} {rng.choice(writer.names)} Road",
            "latitude": round(rng.uniform(-40, 50), 4),
            "longitude": round(rng.uniform(-100, 150), 4),
            "capacity": rng.randint(10, 800),
            "contacts": [{"name": rng.choice(writer.names), "email": "desk@centre.example.org"}],
            "accreditations": ["PASA"] if rng.random() < 0.3 else [],
            "services": _some(rng, SERVICES, 1, 5),
        }
        return details
    if record_type == "agreement":
        start = _date(rng, year)
        details = {
            "agreement_type": rng.choice(AGREEMENT_TYPES),
            "signatories": [short(language) for _ in range(2)],
            "start_date": start,
            "end_date": start + dt.timedelta(days=rng.randint(180, 2000)),
            "ownership": rng.choice(OWNERSHIP),
            "ownership_notes": writer.text(language, budget * 2 // 3),
            "financial_terms": writer.text(language, budget // 3),
        }
        return details
    raise ValueError(record_type)


@dataclass
class Built:
    """One generated record and what the loader needs to know about it afterwards."""

    record: Record
    network_size: int = 0


def make_records(
    rng: random.Random, count: int, parties: list[Party], taxa: list[Taxon], names: list[str]
) -> Iterator[Built]:
    """Yield ``count`` published records (model objects, with files, translations and taxa)."""
    writer = Writer(rng, names)
    start = dt.datetime(2020, 1, 1)
    for number in range(count):
        record_type = RECORD_TYPES[number % len(RECORD_TYPES)]
        language = _weighted(rng, LANGUAGE_WEIGHTS)
        tier = _weighted(rng, TIER_WEIGHTS)
        party = rng.choice(parties) if rng.random() < 0.85 else None
        year = rng.randint(1998, 2024)
        title = writer.title(language, record_type)
        translations = []
        used = len(title)
        if rng.random() < TRANSLATION_SHARE:
            other = rng.choice([code for code in LEXICONS if code != language])
            summary = writer.text(other, 500)
            translations.append(
                RecordTranslation(language=other, title=writer.title(other, record_type), summary=summary)
            )
            used += len(summary) + 80
        has_long_field = record_type in ("protocol", "regulatory_measure", "network", "agreement")
        summary_chars = 800 if has_long_field else RECORD_CHARS - used
        summary = writer.text(language, summary_chars)
        used += len(summary)
        details = _details(rng, writer, record_type, language, year, max(300, RECORD_CHARS - used))
        record = MODEL_FOR_TYPE[record_type](
            id=_id(rng, "r"),
            title=title,
            summary=summary,
            language=language,
            party_iso=party.iso if party else None,
            scope="national" if party else rng.choice(("regional", "global")),
            region=party.region if party else rng.choice((None, *REGIONS)),
            issuing_bodies=[writer.short(language)],
            year=year,
            date=_date(rng, year) if rng.random() < 0.5 else None,
            status="published",
            tier=tier,
            peak_tier=tier,
            published_at=start + dt.timedelta(minutes=rng.randint(0, 6 * 365 * 24 * 60)),
            **details,
        )
        record.translations = translations
        record.taxa = sorted(rng.sample(taxa, rng.choice((0, 1, 1, 2, 3))), key=lambda t: t.name)
        if rng.random() < FILE_SHARE:
            record.files = [_file(rng, writer, language, number)]
        yield Built(record=record, network_size=rng.randint(2, 6) if record_type == "network" else 0)


def _file(rng: random.Random, writer: Writer, language: str, number: int) -> File:
    """A file row whose extracted text is ``FILE_CHARS`` long; nothing is stored on disk."""
    text = writer.text(language, FILE_CHARS)[:FILE_CHARS]
    data = text.encode()
    return File(
        id=_id(rng, "f"),
        title=writer.title(language, "general_guidance"),
        language=language,
        tier="public",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        media_type="application/pdf",
        original_name=f"document-{number}.pdf",
        stored_name=f"bench-{number:08d}",
        text=text,
    )

"""Deterministic seed data for both systems.

Everything is drawn from one ``random.Random(seed)`` over small precomputed pools (Faker per
record is far too slow for 100,000 leads). Each person has a hidden *fit* (company size,
industry, seniority, country) and an *interest* that depends partly on fit, so 90 days of
activity let a sensible scoring model separate good leads from bad ones.

Shares (of ``leads``): every lead is a Salesforce Lead; ~60 % of leads are also HubSpot
contacts (``salesforceleadid``); ~25 % extra Salesforce Contacts at Accounts, half of them in
HubSpot (``salesforcecontactid``); ~15 % extra HubSpot-only contacts; ~1 % of leads get a
second Lead with the same email (a duplicate the matcher must flag).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from syncagent.sandbox.buyers import buyer_journeys
from syncagent.sandbox.context import Context
from syncagent.sandbox.hubspot.portal import HubSpotPortal, Owner
from syncagent.sandbox.hubspot.properties import ANALYTICS_SOURCES, employee_range, iso_ms
from syncagent.sandbox.shipped import shipped

ACTIVITY_DAYS = 90
# The team's Lead Status values as a new org (standard values only) would hold them.
STANDARD_STATUS = {"Accepted": "Working - Contacted", "Qualified": "Working - Contacted",
                   "Unqualified": "Closed - Not Converted", "Recycled": "Closed - Not Converted"}

FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Carlos", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra",
    "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua",
    "Michelle", "Kenji", "Aiko", "Priya", "Arjun", "Wei", "Mei", "Lukas", "Sofia", "Mateo",
    "Camila", "Olivia", "Noah", "Emma", "Liam", "Ava", "Ethan", "Chloe", "Lucas", "Amelia",
    "Mason", "Harper", "Logan", "Ines", "Pierre", "Chiara", "Marco", "Fatima", "Omar", "Yusuf",
    "Leila", "Sven", "Ingrid", "Hannah", "Jonas",
)
LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "Tanaka", "Sato", "Patel", "Sharma", "Chen",
    "Wang", "Muller", "Schmidt", "Rossi", "Bianchi", "Dubois", "Moreau", "Silva", "Santos",
    "Kowalski", "Novak", "Larsen", "Johansson", "Okafor", "Haddad", "Cohen", "O'Brien",
)
WORDS = (
    "Acme", "Apex", "Blue", "Bright", "Cedar", "Cloud", "Crest", "Delta", "Echo", "Ever", "Falcon",
    "First", "Forge", "Global", "Granite", "Harbor", "Iron", "Jade", "Keystone", "Lake", "Lumen",
    "Maple", "Meridian", "Nexus", "North", "Nova", "Oak", "Orbit", "Peak", "Pine", "Pioneer",
    "Prime", "Quantum", "Quartz", "Red", "River", "Sage", "Silver", "Sky", "Solar", "Summit",
    "Swift", "Terra", "True", "Union", "Vector", "Vista", "Wave", "West", "Zen",
)
SUFFIXES = ("Labs", "Systems", "Group", "Technologies", "Partners", "Industries", "Analytics",
            "Health", "Logistics", "Software", "Capital", "Foods", "Energy", "Media", "Works")
TARGET_INDUSTRIES = ("Technology", "Finance", "Healthcare", "Manufacturing", "Retail",
                     "Telecommunications", "Insurance", "Banking")
OTHER_INDUSTRIES = ("Education", "Government", "Not For Profit", "Hospitality", "Agriculture",
                    "Construction", "Media", "Transportation", "Consulting", "Other")
# (country, weight, fit bonus, [(state, [cities])])
GEOGRAPHY: tuple[tuple[str, float, float, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("United States", 0.45, 0.2, (("CA", ("San Francisco", "Los Angeles", "San Diego")),
                                  ("NY", ("New York", "Buffalo")), ("TX", ("Austin", "Dallas")),
                                  ("MA", ("Boston", "Cambridge")), ("IL", ("Chicago",)),
                                  ("WA", ("Seattle",)), ("GA", ("Atlanta",)),
                                  ("CO", ("Denver",)))),
    ("Canada", 0.07, 0.15, (("ON", ("Toronto", "Ottawa")), ("BC", ("Vancouver",)),
                            ("QC", ("Montreal",)))),
    ("United Kingdom", 0.1, 0.15, (("", ("London", "Manchester", "Edinburgh")),)),
    ("Germany", 0.08, 0.1, (("", ("Berlin", "Munich", "Hamburg")),)),
    ("France", 0.06, 0.1, (("", ("Paris", "Lyon")),)),
    ("Australia", 0.05, 0.1, (("NSW", ("Sydney",)), ("VIC", ("Melbourne",)))),
    ("India", 0.08, -0.1, (("", ("Bangalore", "Mumbai", "Pune")),)),
    ("Brazil", 0.05, -0.1, (("", ("Sao Paulo", "Rio de Janeiro")),)),
    ("Japan", 0.03, 0.0, (("", ("Tokyo", "Osaka")),)),
    ("Nigeria", 0.03, -0.2, (("", ("Lagos",)),)),
)
# (seniority, weight, fit, titles)
SENIORITY: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("C-Level", 0.06, 0.9, ("CEO", "CMO", "CRO", "CTO", "Chief Revenue Officer", "COO")),
    ("VP", 0.12, 0.85, ("VP Marketing", "VP of Sales", "VP Revenue Operations",
                        "VP Demand Generation")),
    ("Director", 0.2, 0.75, ("Director of Marketing", "Director, Sales Operations",
                             "Marketing Operations Director", "Director of Demand Gen")),
    ("Manager", 0.3, 0.55, ("Marketing Manager", "RevOps Manager", "Sales Manager",
                            "Marketing Operations Manager", "Campaign Manager")),
    ("Individual Contributor", 0.25, 0.3, ("Marketing Specialist", "Sales Development Rep",
                                           "Content Writer", "Analyst", "Coordinator",
                                           "Account Executive")),
    ("Student", 0.07, 0.02, ("Student", "Intern", "Graduate Assistant", "Job Seeker")),
)
TERRITORIES = ("NA-East", "NA-West", "EMEA", "APAC", "LATAM")
LEAD_SOURCES = ("Web", "Webinar", "Trade Show", "Partner Referral", "Purchased List",
                "Advertisement", "Employee Referral", "Other")
GOOD_PAGES = ("/pricing", "/demo", "/product", "/product/integrations", "/customers",
              "/compare", "/security", "/product/routing")
OTHER_PAGES = ("/blog/lead-scoring-101", "/blog/revops-guide", "/blog/what-is-mql",
               "/resources/ebook-lead-management", "/about", "/careers", "/careers/jobs",
               "/blog/salesforce-hubspot-sync", "/")
FORMS = (("Demo request", 0.9), ("Contact sales", 0.8), ("Ebook download", 0.4),
         ("Webinar registration", 0.5), ("Newsletter signup", 0.15), ("Job application", 0.0))
CAMPAIGNS = (("Q3 Product Webinar", "Webinar"), ("Lead Scoring Ebook", "Content"),
             ("SaaStr Annual Booth", "Trade Show"), ("Monthly Newsletter", "Email"),
             ("RevOps Summit", "Conference"), ("Paid Search - Brand", "Advertisement"),
             ("Partner Referral Program", "Referral Program"), ("Spring Webinar Series",
                                                               "Webinar"),
             ("Customer Stories Email", "Email"), ("Routing Best Practices Guide", "Content"),
             ("LinkedIn Ads Q4", "Banner Ads"), ("Direct Mail Q2", "Direct Mail"))
CALL_DISPOSITIONS = (("Connected", 0.35), ("Left Voicemail", 0.35), ("No Answer", 0.3))
LEAD_STATUS_TO_HS = {"Open - Not Contacted": "NEW", "Working - Contacted": "IN_PROGRESS",
                     "Accepted": "OPEN", "Qualified": "OPEN_DEAL", "Unqualified": "UNQUALIFIED",
                     "Recycled": "BAD_TIMING"}
HS_CALL_DISPOSITIONS = {"Connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
                        "Left Voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
                        "No Answer": "73a0d17f-1163-4015-bdd5-ec830791da20"}


@dataclass(slots=True)
class Company:
    name: str
    domain: str
    employees: int
    revenue: int
    industry: str
    country: str
    state: str
    city: str
    fit: float


@dataclass(slots=True)
class Person:
    first: str
    last: str
    email: str
    title: str
    seniority: str
    company: Company
    fit: float
    interest: float


def _weighted(rng: random.Random, items: Any, weight_index: int = 1) -> Any:
    total = sum(item[weight_index] for item in items)
    pick = rng.random() * total
    for item in items:
        pick -= item[weight_index]
        if pick <= 0:
            return item
    return items[-1]


def sf_datetime(moment: datetime) -> datetime:
    """Salesforce rows are inserted with Python datetimes (the org stores them as such)."""
    return moment


class Seeder:
    """Builds the data set; one instance per seeding run."""

    def __init__(self, ctx: Context, leads: int, seed: int) -> None:
        self.ctx = ctx
        self.rng = random.Random(seed)
        self.seed = seed
        self.n = leads
        self.now = ctx.clock.now()
        self.emails: set[str] = set()
        self.summary: dict[str, int] = {}

    # ----- pools ---------------------------------------------------------------------------
    def companies(self) -> list[Company]:
        rng, out, names = self.rng, [], set()
        for _ in range(max(20, self.n // 4)):
            name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(SUFFIXES)}"
            while name in names:
                name = f"{name} {rng.randint(2, 99)}"
            names.add(name)
            employees = int(min(250_000, max(1, math.exp(rng.gauss(4.2, 1.9)))))
            revenue = int(employees * rng.uniform(60_000, 320_000))
            target = rng.random() < 0.55
            industry = rng.choice(TARGET_INDUSTRIES if target else OTHER_INDUSTRIES)
            country, _w, geo_fit, regions = _weighted(rng, GEOGRAPHY)
            state, cities = rng.choice(regions)
            size_fit = 0.9 if 200 <= employees <= 20_000 else 0.55 if employees >= 50 else 0.15
            fit = 0.5 * size_fit + (0.3 if target else 0.05) + geo_fit
            slug = "".join(ch for ch in name.lower() if ch.isalnum())[:24]
            tld = {"United Kingdom": ".co.uk", "Germany": ".de", "France": ".fr",
                   "Australia": ".com.au", "Japan": ".jp", "Brazil": ".com.br"}.get(country,
                                                                                  ".com")
            out.append(Company(name, slug + tld, employees, revenue, industry, country, state,
                               rng.choice(cities), max(0.0, min(1.0, fit))))
        return out

    def person(self, company: Company) -> Person:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        seniority, _w, seniority_fit, titles = _weighted(rng, SENIORITY)
        local = f"{first}.{last}".lower().replace("'", "")
        domain = company.domain if rng.random() > 0.08 else rng.choice(
            ("gmail.com", "yahoo.com", "outlook.com"))
        email, n = f"{local}@{domain}", 1
        while email in self.emails:
            n += 1
            email = f"{local}{n}@{domain}"
        self.emails.add(email)
        fit = max(0.0, min(1.0, 0.55 * company.fit + 0.45 * seniority_fit
                           + rng.gauss(0, 0.05) - (0.2 if domain.endswith(".com")
                                                   and domain != company.domain else 0)))
        # Interest follows fit partly: good-fit people engage more, with plenty of noise.
        interest = max(0.0, min(1.0, 0.45 * fit + 0.55 * rng.random() ** 1.5))
        return Person(first, last, email, rng.choice(titles), seniority, company, fit, interest)

    def ago(self, max_days: float, min_days: float = 0.0) -> datetime:
        return self.now - timedelta(days=self.rng.uniform(min_days, max_days))

    # ----- users / owners ----------------------------------------------------------------
    def users(self) -> tuple[list[str], dict[str, int], list[str]]:
        """SF Users (managers first) and matching HubSpot owners; returns (rep ids, map, all)."""
        rng, hs = self.rng, self.ctx.hs
        count = min(200, max(8, self.n // 100))
        # The integration user (the credentials' username) is made by SalesforceOrg itself.
        managers = max(2, count // 8)
        rows: list[dict[str, Any]] = []
        for i in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first}.{last}{i}@syncagent-sandbox.example.com".lower().replace("'", "")
            territory = TERRITORIES[i % len(TERRITORIES)]
            rows.append({"Username": email, "FirstName": first, "LastName": last,
                         "Alias": (first[:4] + last[:4]).lower(), "Email": email,
                         "IsActive": rng.random() > 0.04 or i < managers,
                         "Title": "Sales Manager" if i < managers else "Sales Development Rep",
                         "Department": "Sales", "Territory__c": territory,
                         # About one rep in sixteen is away: routing must skip them.
                         "Out_Of_Office__c": i >= managers and (i - managers) % 16 == 3,
                         "CreatedDate": sf_datetime(self.ago(700, 120))})
        manager_ids = self.ctx.sf.insert("User", rows[:managers])
        for row in rows[managers:]:
            row["ManagerId"] = manager_ids[rng.randrange(len(manager_ids))]
        rep_ids = self.ctx.sf.insert("User", rows[managers:])
        owner_of: dict[str, int] = {}
        for n, (uid, row) in enumerate(zip([*manager_ids, *rep_ids], rows, strict=True)):
            if n == len(rows) - 1:
                continue   # one rep has no HubSpot seat: owner matching must cope
            owner = Owner(id=70_000_000 + 1013 * n, email=row["Email"],
                          first_name=row["FirstName"], last_name=row["LastName"],
                          user_id=9_100_000 + n, created_at=self.ago(700, 120),
                          teams=[{"id": str(500 + TERRITORIES.index(row["Territory__c"])),
                                  "name": row["Territory__c"], "primary": True}])
            hs.add_owner(owner)
            owner_of[uid] = owner.id
        active_reps = [uid for uid, row in zip(rep_ids, rows[managers:], strict=True)
                       if row["IsActive"]]
        self.summary["users"] = len(rows)
        return active_reps or rep_ids, owner_of, [*manager_ids, *rep_ids]

    # ----- the whole run ------------------------------------------------------------------
    def run(self) -> dict[str, int]:
        rng, sf = self.rng, self.ctx.sf
        reps, owner_of, _ = self.users()
        companies = self.companies()
        accounts = [c for c in companies if rng.random() < 0.3] or companies[:1]
        account_rows = [{"Name": c.name, "Website": f"https://www.{c.domain}",
                         "NumberOfEmployees": c.employees, "AnnualRevenue": c.revenue,
                         "Industry": c.industry, "BillingCountry": c.country,
                         "BillingState": c.state or None, "BillingCity": c.city,
                         "Type": "Customer - Direct" if rng.random() < 0.3 else "Prospect",
                         "OwnerId": rng.choice(reps),
                         "CreatedDate": sf_datetime(self.ago(600, 100))} for c in accounts]
        account_ids = dict(zip([c.name for c in accounts], sf.insert("Account", account_rows),
                               strict=True))
        campaign_ids = self.campaigns(reps)

        lead_people = [self.person(rng.choice(companies)) for _ in range(self.n)]
        lead_rows = [self.lead_row(p, reps) for p in lead_people]
        dup_rows = []
        for p in rng.sample(lead_people, k=max(1, self.n // 100)):
            twin = self.lead_row(p, reps)
            twin["Company"] = p.company.name.upper() if rng.random() < 0.5 else p.company.name
            twin["LeadSource"] = "Purchased List"
            dup_rows.append(twin)
        lead_ids = sf.insert("Lead", lead_rows + dup_rows)

        contact_people = [self.person(rng.choice(accounts)) for _ in range(max(1, self.n // 4))]
        contact_rows = [self.contact_row(p, account_ids[p.company.name], reps)
                        for p in contact_people]
        contact_ids = sf.insert("Contact", contact_rows)

        sf_people = ([("Lead", lid, p) for lid, p in zip(lead_ids, lead_people, strict=False)]
                     + [("Contact", cid, p) for cid, p in zip(contact_ids, contact_people,
                                                              strict=True)])
        self.sf_activity(sf_people, reps, campaign_ids)
        self.hubspot(lead_people, lead_ids, contact_people, contact_ids, companies, owner_of,
                     lead_rows)
        # The hidden buyer model (its own random stream): leads dated from their first touch,
        # and converted by a propensity that fit, progress and recency drive.
        self.summary.update(buyer_journeys(self.ctx, lead_ids, [p.fit for p in lead_people],
                                           self.seed))
        self.summary.update(leads=len(lead_ids), duplicate_leads=len(dup_rows),
                            contacts=len(contact_ids), accounts=len(account_ids),
                            companies=len(companies))
        return self.summary

    def lead_row(self, p: Person, reps: list[str]) -> dict[str, Any]:
        rng = self.rng
        created = self.ago(365, 0.5)
        status = _weighted(rng, (("Open - Not Contacted", 0.45), ("Working - Contacted", 0.3),
                                 ("Accepted", 0.05), ("Qualified", 0.06),
                                 ("Unqualified", 0.1), ("Recycled", 0.04)))[0]
        drawn = status
        statuses = self.ctx.sf.schema.objects["Lead"].fields["Status"].picklist
        if status not in statuses:       # a new org has the standard values only
            status = STANDARD_STATUS[status]
        row: dict[str, Any] = {
            "FirstName": p.first, "LastName": p.last, "Email": p.email, "Title": p.title,
            "Company": p.company.name, "NumberOfEmployees": p.company.employees,
            "AnnualRevenue": p.company.revenue, "Industry": p.company.industry,
            "Country": p.company.country, "State": p.company.state or None,
            "City": p.company.city, "Website": f"https://www.{p.company.domain}",
            "Phone": f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
            "LeadSource": rng.choice(LEAD_SOURCES), "Status": status,
            "OwnerId": rng.choice(reps), "CreatedDate": sf_datetime(created),
        }
        if drawn == "Unqualified":
            row["Disqualified_Reason__c"] = rng.choice(("No Budget", "No Authority", "Timing",
                                                        "Competitor", "Not a Fit", "Bad Data"))
        return row

    def contact_row(self, p: Person, account_id: str, reps: list[str]) -> dict[str, Any]:
        return {"FirstName": p.first, "LastName": p.last, "Email": p.email, "Title": p.title,
                "AccountId": account_id, "MailingCountry": p.company.country,
                "MailingState": p.company.state or None, "MailingCity": p.company.city,
                "Phone": f"+1 555 {self.rng.randint(100, 999)} {self.rng.randint(1000, 9999)}",
                "LeadSource": self.rng.choice(LEAD_SOURCES), "OwnerId": self.rng.choice(reps),
                "CreatedDate": sf_datetime(self.ago(500, 1))}

    def campaigns(self, reps: list[str]) -> list[tuple[str, str, str]]:
        rows = []
        for name, kind in CAMPAIGNS:
            start = self.ago(ACTIVITY_DAYS, 5).date()
            rows.append({"Name": name, "Type": kind, "Status": "In Progress", "IsActive": True,
                         "StartDate": start, "EndDate": start + timedelta(days=60),
                         "OwnerId": reps[0], "CreatedDate": sf_datetime(self.ago(120, 95))})
        ids = self.ctx.sf.insert("Campaign", rows)
        return [(cid, name, kind) for cid, (name, kind) in zip(ids, CAMPAIGNS, strict=True)]

    # ----- Salesforce activity ------------------------------------------------------------
    def sf_activity(self, people: list[tuple[str, str, Person]], reps: list[str],
                    campaigns: list[tuple[str, str, str]]) -> None:
        rng = self.rng
        tasks, events, members = [], [], []
        for kind, who, p in people:
            calls = int(rng.random() * 5 * (0.3 + p.fit))
            for _ in range(calls):
                disposition = _weighted(rng, CALL_DISPOSITIONS)[0]
                when = self.ago(ACTIVITY_DAYS)
                tasks.append({"WhoId": who, "Subject": "Call", "Type": "Call",
                              "CallDisposition": disposition, "Status": "Completed",
                              "ActivityDate": when.date(), "OwnerId": rng.choice(reps),
                              "TaskSubtype": "Call", "CallType": "Outbound",
                              "CreatedDate": sf_datetime(when)})
            if rng.random() < 0.6 * p.interest * p.fit:
                when = self.ago(ACTIVITY_DAYS)
                demo = rng.random() < 0.5
                events.append({"WhoId": who, "Subject": "Demo" if demo else "Discovery call",
                               "Type": "Demo" if demo else "Meeting",
                               "ActivityDate": when.date(), "ActivityDateTime": when,
                               "StartDateTime": when, "EndDateTime": when + timedelta(
                                   minutes=30), "DurationInMinutes": 30,
                               "OwnerId": rng.choice(reps), "CreatedDate": sf_datetime(when)})
            for cid, _name, _ in rng.sample(campaigns, k=min(len(campaigns),
                                                             int(p.interest * 3.5))):
                responded = rng.random() < 0.3 + 0.6 * p.interest
                members.append({"CampaignId": cid, "LeadId": who if kind == "Lead" else None,
                                "ContactId": who if kind == "Contact" else None,
                                "Status": "Responded" if responded else "Sent",
                                "CreatedDate": sf_datetime(self.ago(ACTIVITY_DAYS))})
        self.ctx.sf.insert("Task", tasks)
        self.ctx.sf.insert("Event", events)
        self.ctx.sf.insert("CampaignMember", members)
        self.summary.update(sf_tasks=len(tasks), sf_events=len(events),
                            campaign_members=len(members))

    # ----- HubSpot --------------------------------------------------------------------------
    def hubspot(self, lead_people: list[Person], lead_ids: list[str],
                contact_people: list[Person], contact_ids: list[str],
                companies: list[Company], owner_of: dict[str, int],
                lead_rows: list[dict[str, Any]]) -> None:
        rng, hs = self.rng, self.ctx.hs
        linked: list[tuple[Person, dict[str, str]]] = []
        for p, lid, row in zip(lead_people, lead_ids, lead_rows, strict=False):
            if rng.random() < 0.6:
                owner = owner_of.get(row["OwnerId"])
                linked.append((p, {"salesforceleadid": lid,
                                   "hubspot_owner_id": str(owner) if owner else "",
                                   "hs_lead_status": LEAD_STATUS_TO_HS.get(row["Status"], "")}))
        for p, cid in zip(contact_people, contact_ids, strict=True):
            if rng.random() < 0.5:
                linked.append((p, {"salesforcecontactid": cid}))
        for _ in range(max(1, self.n * 15 // 100)):
            linked.append((self.person(rng.choice(companies)), {}))
        n_events = n_engagements = 0
        for p, extra in linked:
            created = self.ago(365, 0.5)
            record = hs.create("contacts", portal_values(hs, {**self.hs_props(p), **extra}),
                               created_at=created, system=True)
            n_events += self.web_events(hs, record.id, p)
            n_engagements += self.engagements(hs, record.id, p, list(owner_of.values()))
        if hs.profile != "fresh":   # set-up made one MANUAL list per shipped nurture track
            for name in shipped().nurture_lists:
                hs.create_list(name, "MANUAL")
        lists = [hs.create_list("Newsletter subscribers", "MANUAL"),
                 hs.create_list("Webinar attendees", "SNAPSHOT"),
                 hs.create_list("High intent (dynamic)", "DYNAMIC")]
        contact_ids_hs = sorted(hs.store("contacts").records)
        for hs_list in lists:
            for rid in rng.sample(contact_ids_hs, k=min(len(contact_ids_hs),
                                                         max(1, len(contact_ids_hs) // 10))):
                hs_list.members[rid] = self.ago(ACTIVITY_DAYS)
        self.summary.update(hubspot_contacts=len(linked), hubspot_events=n_events,
                            hubspot_engagements=n_engagements)

    def hs_props(self, p: Person) -> dict[str, str]:
        c = p.company
        return {"email": p.email, "firstname": p.first, "lastname": p.last,
                "jobtitle": p.title, "company": c.name, "numberofemployees": str(c.employees),
                "annualrevenue": str(c.revenue), "industry": c.industry, "country": c.country,
                "state": c.state, "city": c.city, "website": f"https://www.{c.domain}",
                "lifecyclestage": "lead" if p.interest > 0.3 else "subscriber",
                "hs_analytics_source": self.rng.choice(ANALYTICS_SOURCES)}

    def web_events(self, hs: HubSpotPortal, contact_id: int, p: Person) -> int:
        """Page views, forms, email opens/clicks and webinars; updates the summary props."""
        rng = self.rng
        heat = p.interest
        views = int(rng.random() * 25 * heat * heat + rng.random() * 2)
        forms = int(rng.random() * 3 * heat)
        opens = int(rng.random() * 10 * (0.2 + heat))
        clicks = int(opens * rng.random() * heat)
        webinar = rng.random() < 0.25 * heat
        last_form, last_click, last_open = "", "", ""
        count = 0
        for _ in range(views):
            good = rng.random() < 0.3 + 0.5 * p.fit
            url = "https://www.example-vendor.com" + rng.choice(GOOD_PAGES if good else
                                                                OTHER_PAGES)
            hs.add_event("e_visited_page", contact_id, self._recent(heat),
                         {"hs_url": url, "hs_title": url.rsplit("/", 1)[-1] or "Home"})
            count += 1
        for _ in range(forms):
            form = _weighted(rng, FORMS)[0] if heat > 0.4 else rng.choice(FORMS)[0]
            hs.add_event("e_submitted_form", contact_id, self._recent(heat),
                         {"hs_form_title": form, "hs_url": "https://www.example-vendor.com/"
                          + form.lower().replace(" ", "-")})
            last_form = form
            count += 1
        for i in range(opens):
            when = self._recent(heat)
            campaign = rng.choice(CAMPAIGNS)[0]
            hs.add_event("e_opened_email", contact_id, when, {"hs_email_campaign": campaign})
            last_open = max(last_open, iso_ms(when))
            if i < clicks:
                hs.add_event("e_clicked_email", contact_id, when + timedelta(minutes=2),
                             {"hs_email_campaign": campaign,
                              "hs_url": "https://www.example-vendor.com/pricing"})
                last_click = iso_ms(when)
                count += 1
            count += 1
        if webinar:
            when = self._recent(heat)
            registered = max(when - timedelta(days=7),
                             self.now - timedelta(days=ACTIVITY_DAYS))
            hs.add_event("e_registered_webinar", contact_id, registered,
                         {"hs_webinar_name": "Q3 Product Webinar"})
            if rng.random() < 0.6:
                hs.add_event("e_attended_webinar", contact_id, when,
                             {"hs_webinar_name": "Q3 Product Webinar"})
                count += 1
            count += 1
        record = hs.store("contacts").records[contact_id]
        record.properties["hs_analytics_num_page_views"] = str(views)
        record.properties["num_conversion_events"] = str(forms)
        if last_form:
            record.properties["recent_conversion_event_name"] = last_form
        if last_click:
            record.properties["hs_email_last_click_date"] = last_click
        if last_open:
            record.properties["hs_email_last_open_date"] = last_open
        return count

    def _recent(self, heat: float) -> datetime:
        """A moment in the last 90 days; hot people are more active recently."""
        skew = 1.0 + 2.0 * heat
        return self.now - timedelta(days=ACTIVITY_DAYS * (self.rng.random() ** skew),
                                    seconds=self.rng.random() * 3600)

    def engagements(self, hs: HubSpotPortal, contact_id: int, p: Person,
                    owners: list[int]) -> int:
        rng = self.rng
        count = 0
        link = {"contacts": {contact_id}}
        if rng.random() < 0.3 + 0.4 * p.interest:
            when = self._recent(p.interest)
            hs.create("emails", {"hs_timestamp": iso_ms(when), "hs_email_subject":
                                 "Following up on your visit", "hs_email_direction": "EMAIL",
                                 "hs_email_status": "SENT", "hs_email_text": "Hi!"},
                      associations=link, created_at=when, system=True)
            count += 1
        if rng.random() < 0.4 * p.fit:
            disposition = _weighted(rng, CALL_DISPOSITIONS)[0]
            when = self._recent(p.interest)
            hs.create("calls", {"hs_timestamp": iso_ms(when), "hs_call_title": "Intro call",
                                "hs_call_disposition": HS_CALL_DISPOSITIONS[disposition],
                                "hs_call_direction": "OUTBOUND", "hs_call_status": "COMPLETED",
                                "hs_call_duration": str(rng.randint(0, 900_000)),
                                "hubspot_owner_id": str(rng.choice(owners)) if owners else ""},
                      associations=link, created_at=when, system=True)
            count += 1
        if rng.random() < 0.3 * p.fit * p.interest:
            when = self._recent(p.interest)
            outcome = "COMPLETED" if when < self.now - timedelta(days=1) else "SCHEDULED"
            hs.create("meetings", {"hs_timestamp": iso_ms(when), "hs_meeting_title": "Demo",
                                   "hs_meeting_start_time": iso_ms(when),
                                   "hs_meeting_end_time": iso_ms(when + timedelta(minutes=30)),
                                   "hs_meeting_outcome": outcome},
                      associations=link, created_at=when, system=True)
            count += 1
        if rng.random() < 0.1:
            when = self._recent(0.5)
            hs.create("notes", {"hs_timestamp": iso_ms(when), "hs_note_body":
                                "Met at the booth; interested in routing."},
                      associations=link, created_at=when, system=True)
            count += 1
        if rng.random() < 0.08:
            when = self._recent(0.5)
            hs.create("tasks", {"hs_timestamp": iso_ms(when), "hs_task_subject": "Follow up",
                                "hs_task_status": rng.choice(("NOT_STARTED", "COMPLETED")),
                                "hs_task_type": "CALL", "hs_task_priority": "MEDIUM"},
                      associations=link, created_at=when, system=True)
            count += 1
        return count


def portal_values(hs: HubSpotPortal, values: dict[str, str]) -> dict[str, str]:
    """Seed values as this portal holds them: only properties it has; a company size as its
    range where numberofemployees is an enumeration."""
    defs = hs.properties["contacts"]
    out = {k: v for k, v in values.items() if k in defs}
    employees = defs.get("numberofemployees")
    if employees is not None and employees.type == "enumeration" and out.get(
            "numberofemployees", "").isdigit():
        out["numberofemployees"] = employee_range(int(out["numberofemployees"]))
    return out


def seed_sandbox(ctx: Context, *, leads: int, seed: int) -> dict[str, int]:
    """Fill ctx.sf and ctx.hs deterministically from seed; returns counts of what was made."""
    return Seeder(ctx, leads, seed).run()



package sandbox

// Word lists for generated data. Names mix scripts, diacritics, apostrophes and hyphens on purpose:
// a connector that mangles UTF-8 or quotes shows it here.
var (
	firstNames = []string{"Zoë", "José", "Łukasz", "Søren", "Aiko", "Mỹ", "Émilie", "Björn", "Nnamdi", "Priya",
		"Ольга", "伟", "محمد", "François", "Anaïs", "Kwame", "Siobhán", "Jürgen", "Renée", "Ana", "John", "Mary",
		"Liam", "Olivia", "Noah", "Emma", "Mateo", "Chloé", "Ingrid", "Dvořák", "Ōta", "Ayşe"}
	firstASCII = []string{"zoe", "jose", "lukasz", "soren", "aiko", "my", "emilie", "bjorn", "nnamdi", "priya",
		"olga", "wei", "mohammed", "francois", "anais", "kwame", "siobhan", "jurgen", "renee", "ana", "john", "mary",
		"liam", "olivia", "noah", "emma", "mateo", "chloe", "ingrid", "dvorak", "ota", "ayse"}
	lastNames = []string{"Müller", "García-López", "O'Brien", "Nguyễn", "Kowalski", "Smith", "田中", "Ivanova",
		"d'Arcy", "van der Berg", "Núñez", "Øvergaard", "Xu", "Okafor", "Johansson", "Rossi", "Dubois", "Kim",
		"Al-Farsi", "Papadopoulos", "Ó Súilleabháin", "Schmidt"}
	lastASCII = []string{"muller", "garcia-lopez", "obrien", "nguyen", "kowalski", "smith", "tanaka", "ivanova",
		"darcy", "vanderberg", "nunez", "overgaard", "xu", "okafor", "johansson", "rossi", "dubois", "kim",
		"al-farsi", "papadopoulos", "osuilleabhain", "schmidt"}
	domains   = []string{"example.com", "example.org", "mail.example.net", "exämple.de", "example.co.jp"}
	orgs      = []string{"Acme Corp", "Café Crème SARL", "北京贸易有限公司", "Ünïcode Labs", "O'Reilly & Sons", "Żabka Sp. z o.o."}
	titles    = []string{"CEO", "Head of Growth", "Développeuse", "Buyer", "Marketing Manager", "店長"}
	locales   = []string{"en-US", "en-GB", "fr-FR", "de-DE", "ja-JP", "es-MX", "pt-BR", "pl-PL"}
	cities    = []string{"Boston", "Montréal", "São Paulo", "Zürich", "東京", "Kraków", "Reykjavík", "Lagos", "Düsseldorf"}
	countries = []string{"United States", "Canada", "Brazil", "Switzerland", "Japan", "Poland", "Iceland", "Nigeria", "Germany"}
	regions   = []string{"MA", "QC", "SP", "ZH", "Tokyo", "Małopolskie", "Höfuðborgarsvæðið", "Lagos", "NRW"}
	timezones = []string{"America/New_York", "America/Toronto", "America/Sao_Paulo", "Europe/Zurich", "Asia/Tokyo",
		"Europe/Warsaw", "Atlantic/Reykjavik", "Africa/Lagos", "Europe/Berlin"}
	products = []string{"Organic Cotton Tee", "Café au lait Mug", "Ünïcorn Plush 🦄", "Trail Runner 2.0",
		"Matcha 抹茶 Tin", "Wool Beanie (Navy)", "Leather \"Classic\" Wallet", "Gift Card", "Ceramic Vase — Large"}
	words = []string{"spring", "sale", "new", "arrivals", "VIP", "winback", "welcome", "été", "ニュース", "flash",
		"holiday", "loyalty", "browse", "abandon", "review", "restock", "weekly", "digest"}
)

//! Customer names: "First Last" from built-in lists, every customer a different pair, and no
//! two customers' names near-duplicates of each other unless a near-duplicate is planted.
//!
//! Name number `i` (customer `i + 1`) is a pair of a first name and a last name; once the
//! [`FIRST`] × [`LAST`] pairs run out (about 169k customers, scale factor 1.13), names get
//! one middle name from [`FIRST`], then two, and so on. Both lists are pairwise at edit
//! distance 3 or more, so two names that differ in one word are at distance 3 or more when
//! the words line up; the tests check the whole names, word boundaries and all.
//!
//! A planted near-duplicate is a customer whose name is a variation of another customer's:
//! the same name in other case, with a doubled space or a hyphen (equal once normalized), or
//! with a dropped or two swapped letters (within the edit distance that makes names
//! near-duplicates). A variation that changes letters is only used when it is at distance 3 or
//! more from every other name of the shop ([`near_a_customer_name`]), so that the pair is the
//! only near-duplicate it makes.

/// First names, also the middle names: ASCII letters, pairwise at Levenshtein distance 3 or
/// more (ignoring case).
#[rustfmt::skip]
pub(crate) const FIRST: [&str; 362] = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Christopher", "Karen", "Charles", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Sandra",
    "Margaret", "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily", "Paul", "Donna",
    "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "Timothy",
    "Deborah", "Stephanie", "George", "Dorothy", "Jason", "Rebecca", "Edward", "Sharon", "Jeffrey",
    "Laura", "Cynthia", "Kathleen", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Brenda",
    "Emma", "Justin", "Pamela", "Scott", "Nicole", "Brandon", "Samantha", "Benjamin", "Katherine",
    "Samuel", "Christine", "Gregory", "Helen", "Alexander", "Rachel", "Frank", "Raymond", "Jack",
    "Dennis", "Jerry", "Heather", "Tyler", "Diane", "Olivia", "Julie", "Adam", "Joyce", "Victoria",
    "Ruth", "Zachary", "Virginia", "Douglas", "Peter", "Kelly", "Noah", "Ethan", "Evelyn", "Judith",
    "Walter", "Hannah", "Keith", "Megan", "Cheryl", "Jacqueline", "Martha", "Madison", "Gerald",
    "Teresa", "Gloria", "Dylan", "Janice", "Arthur", "Ann", "Lawrence", "Kathryn", "Jordan",
    "Abigail", "Jesse", "Sophia", "Frances", "Bruce", "Gabriel", "Judy", "Isabella", "Amber",
    "Elijah", "Marilyn", "Wayne", "Beverly", "Charlotte", "Vincent", "Natalie", "Roy", "Ralph",
    "Brittany", "Bobby", "Doris", "Russell", "Kayla", "Bradley", "Alexis", "Philip", "Eugene",
    "Tiffany", "Harvey", "Oscar", "Ingrid", "Hugo", "Felix", "Ivan", "Leonard", "Marcus", "Quentin",
    "Ulysses", "Wendell", "Clifford", "Desmond", "Fletcher", "Gideon", "Horace", "Ignatius",
    "Jasper", "Lionel", "Montgomery", "Nigel", "Orville", "Reginald", "Sebastian", "Thaddeus",
    "Vernon", "Winston", "Xavier", "Yusuf", "Agnes", "Beatrice", "Cordelia", "Delphine", "Florence",
    "Gwendolyn", "Harriet", "Imogen", "Josephine", "Mildred", "Nadine", "Ophelia", "Penelope",
    "Rosalind", "Sylvia", "Tabitha", "Ursula", "Violet", "Wilhelmina", "Yolanda", "Zelda",
    "Abraham", "Barnaby", "Cornelius", "Dominic", "Ezekiel", "Frederick", "Gilbert", "Humphrey",
    "Isidore", "Jeremiah", "Lancelot", "Maximilian", "Nathaniel", "Octavius", "Phineas", "Solomon",
    "Tobias", "Valentine", "Augustus", "Emmett", "Fabian", "Griffin", "Hector", "Irving", "Jerome",
    "Leopold", "Milton", "Osborne", "Preston", "Quincy", "Rowan", "Sterling", "Thornton", "Upton",
    "Vaughn", "Yardley", "Adelaide", "Bernadette", "Cecilia", "Eloise", "Georgina", "Henrietta",
    "Katarina", "Lavinia", "Magdalena", "Seraphina", "Theodora", "Ulrika", "Veronica", "Winifred",
    "Xiomara", "Yvonne", "Zenobia", "Ahmed", "Chidi", "Dmitri", "Giorgio", "Hamza", "Kofi", "Mateo",
    "Nikolai", "Rashid", "Santiago", "Tariq", "Vladimir", "Wojciech", "Yannick", "Zoltan", "Bianca",
    "Chiara", "Fatima", "Greta", "Hiroko", "Ilse", "Jasmine", "Leila", "Mirela", "Nkechi", "Oksana",
    "Priya", "Rania", "Svetlana", "Tamsin", "Valeria", "Ximena", "Zuzana", "Alfred", "Clement",
    "Duncan", "Everett", "Floyd", "Herbert", "Kurt", "Otto", "Rufus", "Stanley", "Truman", "Virgil",
    "Wallace", "Blanche", "Constance", "Fern", "Gertrude", "Hazel", "Lorraine", "Rhoda", "Stella",
    "Thelma", "Wilma", "Cora", "Dolores", "Myrtle", "Phyllis", "Roxanne", "Sybil", "Ambrose",
    "Basil", "Casimir", "Elmer", "Ferdinand", "Godfrey", "Jethro", "Lazarus", "Mortimer", "Ossian",
    "Reuben", "Silas", "Fitzgerald", "Gustav", "Hamish", "Jonas", "Konrad", "Lucius", "Ned",
    "Tristan", "Wolfgang", "Yorick", "Adrienne", "Brigitte", "Colette", "Dagny", "Giselle",
    "Hortense", "Jocelyn", "Paloma", "Solveig", "Unity", "Vesna", "Zinnia", "Anastasia",
    "Bartholomew", "Claudette", "Demetrius", "Evangeline", "Fortunato", "Guinevere", "Hieronymus",
    "Isabeau", "Kassandra", "Lysander", "Marguerite", "Nicodemus", "Perpetua", "Sigismund",
    "Tiberius",
];

/// Last names: ASCII letters, pairwise at Levenshtein distance 3 or more (ignoring case).
#[rustfmt::skip]
pub(crate) const LAST: [&str; 468] = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen",
    "Hill", "Flores", "Green", "Adams", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "Phillips", "Evans", "Turner", "Diaz", "Cruz", "Edwards", "Collins", "Reyes", "Stewart",
    "Morales", "Murphy", "Cook", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey",
    "Kelly", "Howard", "Ramos", "Richardson", "Brooks", "Chavez", "Bennett", "Gray", "Mendoza",
    "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Ross", "Foster",
    "Jimenez", "Powell", "Jenkins", "Russell", "Sullivan", "Coleman", "Butler", "Barnes", "Vasquez",
    "Simmons", "Romero", "Alexander", "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace",
    "Moreno", "West", "Bryant", "Herrera", "Ellis", "Medina", "Aguilar", "Stevens", "Ford",
    "Castro", "Marshall", "Owens", "McDonald", "Woods", "Washington", "Kennedy", "Vargas", "Henry",
    "Chen", "Freeman", "Guzman", "Crawford", "Simpson", "Hunter", "Gordon", "Silva", "Shaw",
    "Snyder", "Mason", "Dixon", "Munoz", "Hicks", "Holmes", "Stone", "Salazar", "Warren", "Schmidt",
    "Daniels", "Ferguson", "Nichols", "Weaver", "Gardner", "Payne", "Dunn", "Spencer", "Hawkins",
    "Arnold", "Pierce", "Hansen", "Santos", "Hart", "Elliott", "Cunningham", "Armstrong", "Hudson",
    "Carroll", "Andrews", "Alvarado", "Delgado", "Hoffman", "Matthews", "Pena", "Contreras",
    "Carpenter", "Lawrence", "Sandoval", "Guerrero", "George", "Chapman", "Estrada", "Ortega",
    "Wheeler", "Valdez", "Burke", "Santiago", "Maldonado", "Morrison", "Franklin", "Carlson",
    "Austin", "Dominguez", "Jacobs", "Obrien", "Lynch", "Bishop", "Montgomery", "Oliver", "Harvey",
    "Gilbert", "Sims", "Espinoza", "Reid", "McCoy", "Garrett", "Burton", "Welch", "Lucas", "Fields",
    "Little", "Padilla", "Bowman", "Schultz", "Davidson", "Acosta", "Brewer", "Holland", "Juarez",
    "Curtis", "Douglas", "Schneider", "Joseph", "Navarro", "Figueroa", "Avila", "Wade", "Stanley",
    "Chambers", "Caldwell", "Beck", "Lambert", "Miranda", "Craig", "Frazier", "Neal", "Leonard",
    "Gregory", "Fleming", "Rhodes", "Shelton", "Schwartz", "Watts", "McDaniel", "Parks", "Steele",
    "Vaughn", "Deleon", "Benson", "Lyons", "Graves", "Bush", "Thornton", "Wolfe", "Cabrera",
    "McKinney", "Zimmerman", "Fletcher", "McCarthy", "Robles", "Cervantes", "Erickson", "Klein",
    "Salinas", "Fuentes", "Baldwin", "Higgins", "Aguirre", "Cummings", "Chandler", "Ochoa",
    "Dennis", "Robbins", "Ramsey", "Francis", "Blair", "Oconnor", "Cardenas", "Pacheco", "Calderon",
    "Swanson", "Rivas", "Rodgers", "Serrano", "Fitzgerald", "Christensen", "Manning", "Curry",
    "McLaughlin", "Harmon", "McGee", "Doyle", "Newton", "Burgess", "Trujillo", "Goodman", "Webster",
    "Fischer", "Huang", "Delacruz", "Montoya", "Castaneda", "Cannon", "Sherman", "Hubbard",
    "Guerra", "Valencia", "Gallagher", "Townsend", "Ingram", "Gallegos", "Schroeder", "Maxwell",
    "Camacho", "Strickland", "Parsons", "Frank", "Harrington", "Osborne", "Buchanan", "Patton",
    "Ibarra", "Orozco", "Gibbs", "Andrade", "Bauer", "Escobar", "McGuire", "Lloyd", "French",
    "Kramer", "McBride", "Lindsey", "Velazquez", "McCormick", "Flynn", "Marsh", "Macias",
    "Villanueva", "Zamora", "Pratt", "Ballard", "Villarreal", "Charles", "Drake", "Patrick",
    "Pineda", "Mercado", "Santana", "Shepherd", "Bautista", "Ali", "Shaffer", "Lamb", "Trevino",
    "McKenzie", "Cochran", "Wilkins", "Briggs", "Holloway", "Lozano", "Rangel", "Valenzuela",
    "Underwood", "Summers", "Houston", "Morrow", "Clayton", "Whitaker", "Decker", "Yoder", "Zuniga",
    "Melendez", "Conley", "Davenport", "Copeland", "Huff", "Jefferson", "Anthony", "Pittman",
    "Randall", "Singleton", "Combs", "Mathis", "Christian", "Skinner", "Richard", "Galvan", "Kirby",
    "Atkinson", "Vincent", "Hodge", "Abbott", "Allison", "Tapia", "Sweeney", "Phelps", "Dickerson",
    "Heath", "Bonilla", "Acevedo", "Benitez", "Hensley", "Cisneros", "Rubio", "Arroyo", "Hancock",
    "Callahan", "Cline", "Arellano", "Oneill", "Savage", "Beltran", "Booth", "Koch", "Brennan",
    "McDowell", "Cantu", "Humphrey", "Sawyer", "Hutchinson", "Gilmore", "Villegas", "Ahmed",
    "Beard", "McClain", "Mata", "Rosario", "McClure", "Stephenson", "Preston", "Vance", "Blackwell",
    "Solomon", "Stafford", "English", "Woodard", "Kemp", "Nolan", "McCullough", "Merritt",
    "Murillo", "Cordova", "Barajas", "Winters", "Knox", "Bullock", "Meadows", "Whitehead",
    "Dejesus", "Berger", "McIntyre", "Blankenship", "Palacios", "Cuevas", "Bartlett", "Durham",
    "Dorsey", "McCall", "Odonnell", "Browning", "Lowery", "Sloan", "McLean", "Hendricks", "Calhoun",
    "Duarte", "Nielsen", "Gillespie", "Middleton", "Sellers", "Leblanc", "Esparza", "Bradshaw",
    "McIntosh", "Livingston", "Glass", "Knapp", "Bravo", "Spears", "Weeks",
];

/// Last name of pair `(first, q)`: `(q + first × LAST_STEP) mod |LAST|`, so that customers
/// next to each other have different last names as well as different first names.
const LAST_STEP: usize = 97;

/// Names at Levenshtein distance up to this are "near" when planting: the largest distance
/// that makes two names near-duplicates.
pub(crate) const NEAR: usize = 2;

/// The words of a normal name, as indexes: a first name, middle names (from [`FIRST`]) and
/// a last name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Words {
    first: usize,
    middles: Vec<usize>,
    last: usize,
}

/// Number of first × last pairs.
const PAIRS: u64 = (FIRST.len() * LAST.len()) as u64;

/// `|FIRST|` as `u64`.
const FIRSTS: u64 = FIRST.len() as u64;

/// Number of names with `middles` middle names (saturating).
fn level_size(middles: u32) -> u64 {
    PAIRS.saturating_mul(FIRSTS.saturating_pow(middles))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The words of name number `index` (0-based).
fn words(index: u64) -> Words {
    let mut index = index;
    let mut middles = 0;
    while index >= level_size(middles) {
        index -= level_size(middles);
        middles += 1;
    }
    let pair = index % PAIRS;
    let first = to_usize(pair % FIRSTS);
    let q = to_usize(pair / FIRSTS);
    let last = (q + first * LAST_STEP) % LAST.len();
    let mut rest = index / PAIRS;
    let middles = (0..middles)
        .map(|_| {
            let middle = to_usize(rest % FIRSTS);
            rest /= FIRSTS;
            middle
        })
        .collect();
    Words {
        first,
        middles,
        last,
    }
}

/// The number of the name made of `words` (the inverse of [`words`]).
fn index(words: &Words) -> u64 {
    let shift = (words.first * LAST_STEP) % LAST.len();
    let q = (words.last + LAST.len() - shift) % LAST.len();
    let pair = (q * FIRST.len() + words.first) as u64;
    let rest = words.middles.iter().rev().fold(0u64, |acc, &m| {
        acc.saturating_mul(FIRSTS).saturating_add(m as u64)
    });
    let levels: u64 = (0..words.middles.len())
        .map(|m| level_size(u32::try_from(m).unwrap_or(u32::MAX)))
        .fold(0, u64::saturating_add);
    levels
        .saturating_add(rest.saturating_mul(PAIRS))
        .saturating_add(pair)
}

/// The name of customer `id` (ids from 1): "First Last", or "First Middle Last" in very
/// big shops.
pub(crate) fn customer_name(id: i64) -> String {
    let words = words(u64::try_from(id - 1).unwrap_or(0));
    let mut name = String::from(FIRST[words.first]);
    for &middle in &words.middles {
        name.push(' ');
        name.push_str(FIRST[middle]);
    }
    name.push(' ');
    name.push_str(LAST[words.last]);
    name
}

/// A name as the near-duplicate check compares it: lowercase, every character other than an
/// ASCII letter or digit a space, runs of spaces one space, trimmed.
pub(crate) fn normalized(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// How a planted near-duplicate's name varies from the original's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variation {
    /// All capitals (or all lowercase): equal once normalized.
    Case,
    /// Two spaces between the words: equal once normalized.
    DoubledSpace,
    /// A hyphen between the first name and the next word: equal once normalized.
    Hyphen,
    /// One letter of the last name dropped: edit distance 1 (both names 8 characters or more).
    DroppedLetter,
    /// Two neighbouring letters of the last name swapped: edit distance 2 (both names 12
    /// characters or more).
    SwappedLetters,
}

impl Variation {
    /// The kinds in the order pairs are planted: the demo's five pairs have one each.
    pub(crate) const CYCLE: [Self; 5] = [
        Self::Case,
        Self::DroppedLetter,
        Self::DoubledSpace,
        Self::SwappedLetters,
        Self::Hyphen,
    ];

    /// Normalized length the original needs for this variation to be a near-duplicate.
    pub(crate) fn min_len(self) -> usize {
        match self {
            Self::Case | Self::DoubledSpace | Self::Hyphen => 0,
            Self::DroppedLetter => 9,
            Self::SwappedLetters => 12,
        }
    }
}

/// The variations of `name` of kind `variation`, in the order to try them; `start` rotates
/// the letter positions tried. Empty when the name is too short for the kind.
pub(crate) fn variations(name: &str, variation: Variation, start: usize) -> Vec<String> {
    let (head, last) = name.rsplit_once(' ').unwrap_or(("", name));
    match variation {
        Variation::Case if start.is_multiple_of(2) => vec![name.to_ascii_uppercase()],
        Variation::Case => vec![name.to_ascii_lowercase()],
        Variation::DoubledSpace => vec![format!("{head}  {last}")],
        Variation::Hyphen => vec![name.replacen(' ', "-", 1)],
        _ if normalized(name).len() < variation.min_len() => Vec::new(),
        Variation::DroppedLetter => {
            // Not the first letter: a typo keeps the start of the word.
            let positions = 1..last.len();
            rotated(positions, start)
                .map(|i| format!("{head} {}{}", &last[..i], &last[i + 1..]))
                .collect()
        }
        Variation::SwappedLetters => {
            let bytes = last.as_bytes();
            let positions = (0..last.len().saturating_sub(1))
                .filter(|&i| !bytes[i].eq_ignore_ascii_case(&bytes[i + 1]));
            rotated(positions, start)
                .map(|i| {
                    let mut swapped = bytes.to_vec();
                    swapped.swap(i, i + 1);
                    if i == 0 {
                        // Keep the capital at the front.
                        swapped[0] = swapped[0].to_ascii_uppercase();
                        swapped[1] = swapped[1].to_ascii_lowercase();
                    }
                    let swapped = String::from_utf8(swapped).unwrap_or_default();
                    format!("{head} {swapped}")
                })
                .collect()
        }
    }
}

/// `items` starting at the one at `start` (mod their count), wrapping around.
fn rotated<T>(items: impl Iterator<Item = T>, start: usize) -> impl Iterator<Item = T> {
    let mut items: Vec<T> = items.collect();
    let len = items.len().max(1);
    items.rotate_left(start % len);
    items.into_iter()
}

/// Whether the normal name of a customer among `1..=customers`, other than `except`, lies
/// within Levenshtein distance [`NEAR`] of `target` (a normalized name).
///
/// Exact, without looking at every customer: `lev(x, y ␣ z)` is the minimum over the splits
/// of `x` into `x₁ x₂` of `lev(x₁, y ␣) + lev(x₂, z)`, so the names within reach are found
/// word by word, keeping only the words (and splits) still within the distance.
pub(crate) fn near_a_customer_name(target: &str, customers: i64, except: i64) -> bool {
    let customers = u64::try_from(customers).unwrap_or(0);
    let except = u64::try_from(except - 1).ok();
    let target = target.as_bytes();
    let mut start = 0u64;
    for middles in 0u32.. {
        if start >= customers {
            break;
        }
        let size = level_size(middles);
        let mut lists: Vec<&[&str]> = vec![&FIRST];
        lists.extend((0..middles).map(|_| &FIRST[..]));
        lists.push(&LAST);
        let mut chosen = Vec::new();
        let mut used = |words: &[usize]| {
            let (&first, rest) = words.split_first().unwrap_or((&0, &[]));
            let (&last, middles) = rest.split_last().unwrap_or((&0, &[]));
            let n = index(&Words {
                first,
                middles: middles.to_vec(),
                last,
            });
            n < customers && Some(n) != except
        };
        if search(target, &lists, NEAR, &mut chosen, &mut used) {
            return true;
        }
        start = start.saturating_add(size);
    }
    false
}

/// Whether `target` is within `budget` of a name made of one word of each of `lists` (in
/// order, separated by spaces) for which `used` holds.
fn search(
    target: &[u8],
    lists: &[&[&str]],
    budget: usize,
    chosen: &mut Vec<usize>,
    used: &mut impl FnMut(&[usize]) -> bool,
) -> bool {
    let Some((list, more)) = lists.split_first() else {
        return false;
    };
    if more.is_empty() {
        for (w, word) in list.iter().enumerate() {
            if word.len().abs_diff(target.len()) <= budget
                && levenshtein_within(word.as_bytes(), target, budget)
            {
                chosen.push(w);
                let hit = used(chosen);
                chosen.pop();
                if hit {
                    return true;
                }
            }
        }
        return false;
    }
    for (w, word) in list.iter().enumerate() {
        let Some(row) = prefix_distances(word.as_bytes(), target, budget) else {
            continue;
        };
        for (k, &d) in row.iter().enumerate() {
            if d <= budget {
                chosen.push(w);
                let hit = search(&target[k..], more, budget - d, chosen, used);
                chosen.pop();
                if hit {
                    return true;
                }
            }
        }
    }
    false
}

/// `lev(word ␣, text[..k])` for every `k` (case-insensitive on `word`), or `None` when all
/// exceed `budget`.
fn prefix_distances(word: &[u8], text: &[u8], budget: usize) -> Option<Vec<usize>> {
    let mut row: Vec<usize> = (0..=text.len()).collect();
    let pattern = word
        .iter()
        .map(u8::to_ascii_lowercase)
        .chain(std::iter::once(b' '));
    for (i, p) in pattern.enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (k, &t) in text.iter().enumerate() {
            let substitution = diagonal + usize::from(p != t);
            diagonal = row[k + 1];
            row[k + 1] = substitution.min(row[k] + 1).min(diagonal + 1);
        }
        if row.iter().all(|&d| d > budget) {
            return None;
        }
    }
    Some(row)
}

/// Whether `lev(word, text) <= budget` (case-insensitive on `word`).
fn levenshtein_within(word: &[u8], text: &[u8], budget: usize) -> bool {
    let mut row: Vec<usize> = (0..=text.len()).collect();
    for (i, &c) in word.iter().enumerate() {
        let p = c.to_ascii_lowercase();
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (k, &t) in text.iter().enumerate() {
            let substitution = diagonal + usize::from(p != t);
            diagonal = row[k + 1];
            row[k + 1] = substitution.min(row[k] + 1).min(diagonal + 1);
        }
        if row.iter().all(|&d| d > budget) {
            return false;
        }
    }
    row[text.len()] <= budget
}

/// Whether two normalized names are within `budget` of each other.
pub(crate) fn within(a: &str, b: &str, budget: usize) -> bool {
    a.len().abs_diff(b.len()) <= budget && levenshtein_within(a.as_bytes(), b.as_bytes(), budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::{levenshtein, near_duplicates, normalize};

    #[test]
    fn the_lists_are_ascii_words_pairwise_three_edits_apart() {
        for list in [&FIRST[..], &LAST[..]] {
            for (i, a) in list.iter().enumerate() {
                assert!(
                    a.len() >= 3 && a.bytes().all(|b| b.is_ascii_alphabetic()),
                    "{a}"
                );
                assert!(a.as_bytes()[0].is_ascii_uppercase(), "{a}");
                for b in &list[i + 1..] {
                    let d = levenshtein(&a.to_lowercase(), &b.to_lowercase());
                    assert!(d >= 3, "{a} and {b} are {d} edits apart");
                }
            }
        }
    }

    #[test]
    fn names_and_their_numbers_correspond() {
        let firsts = level_size(0)..level_size(0) + 2000;
        let seconds = level_size(0) + level_size(1)..level_size(0) + level_size(1) + 100;
        let mut seen = std::collections::HashSet::new();
        for n in (0..5000).chain(firsts).chain(seconds) {
            let words = words(n);
            assert_eq!(index(&words), n, "{words:?}");
            assert!(seen.insert(words));
        }
        assert_eq!(customer_name(1), "James Smith");
        assert_eq!(words(level_size(0)).middles.len(), 1);
        assert_eq!(words(level_size(0) + level_size(1)).middles.len(), 2);
        let id = i64::try_from(level_size(0)).unwrap() + 1;
        assert_eq!(customer_name(id).split(' ').count(), 3);
    }

    #[test]
    fn normalizing_matches_the_definition() {
        for name in [
            "John  Smith",
            "JOHN-smith",
            " Mary Ann  ",
            "O'Brien, Pat",
            "x--y",
        ] {
            assert_eq!(normalized(name), normalize(name), "{name}");
        }
    }

    #[test]
    fn variations_are_near_duplicates_of_their_original() {
        let long = "Christopher Richardson";
        for variation in Variation::CYCLE {
            for start in 0..3 {
                let all = variations(long, variation, start);
                assert!(!all.is_empty(), "{variation:?}");
                for copy in all {
                    assert!(near_duplicates(long, &copy), "{variation:?}: {copy}");
                    let d = levenshtein(&normalize(long), &normalize(&copy));
                    let expected = match variation {
                        Variation::DroppedLetter => 1,
                        Variation::SwappedLetters => 2,
                        _ => 0,
                    };
                    assert_eq!(d, expected, "{variation:?}: {copy}");
                }
            }
        }
        // Too short for the variations that change letters.
        assert!(variations("Ann Lee", Variation::DroppedLetter, 0).is_empty());
        assert!(variations("John Smith", Variation::SwappedLetters, 0).is_empty());
        assert_eq!(
            variations("John Smith", Variation::DoubledSpace, 0),
            ["John  Smith"]
        );
        assert_eq!(
            variations("John Smith", Variation::Hyphen, 0),
            ["John-Smith"]
        );
    }

    /// The word-by-word search finds exactly what comparing with every name finds.
    #[test]
    fn the_near_name_search_is_exact() {
        let customers = 1000;
        let names: Vec<String> = (1..=customers)
            .map(|id| normalized(&customer_name(id)))
            .collect();
        let brute = |target: &str, except: i64| {
            (1..=customers)
                .filter(|&id| id != except)
                .any(|id| within(&names[usize::try_from(id - 1).unwrap()], target, NEAR))
        };
        let mut targets: Vec<(String, i64)> = Vec::new();
        for id in (1..customers).step_by(23) {
            let name = customer_name(id);
            for variation in Variation::CYCLE {
                for copy in variations(&name, variation, 0).into_iter().take(4) {
                    targets.push((normalized(&copy), id));
                }
            }
            // Names moved away from the shop's: another last name, a space moved.
            targets.push((normalized(&format!("{name}x")), id));
            targets.push((normalized(&name.replacen(' ', "", 1)), id));
            targets.push((
                format!("{} {}", FIRST[5].to_lowercase(), LAST[9].to_lowercase()),
                0,
            ));
            // Near another customer's name, or the original's when it is not excepted.
            let next = normalized(&customer_name(id + 1));
            targets.push((next[..next.len() - 1].to_owned(), id));
            targets.push((normalized(&name), id + 1));
        }
        let mut near = 0;
        for (target, except) in &targets {
            let expected = brute(target, *except);
            near += usize::from(expected);
            assert_eq!(
                near_a_customer_name(target, customers, *except),
                expected,
                "{target} (except {except})"
            );
        }
        assert!(near > 10, "the targets include names near others: {near}");
    }
}

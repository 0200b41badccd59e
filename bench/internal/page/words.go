package page

import "strings"

// common holds frequent English words, roughly in order of frequency, for
// titles, tags and menu labels.
var common = strings.Fields(`
the of and to in a is that for it as was with be by on not he this are or his
from at which but have an they you were her she there been one all we their has
would when if so no will more about can its time only new some could these two may
first then do any like my now over such our man me even most made after also did
many before must through back years where much your way well down should because
each just those people how too little state good very make world still own see men
work long get here between both life being under never day same another know while
last might us great old year off come since against go came right used take three
city himself few house use during without again place around however home small
found thought went say part once general high upon school every does got united left
number course war until always away something fact though water less public put
think almost hand enough far took head yet government system better set told nothing
night end why called eyes find going look asked later knew point next program
city business give group toward young days let room president side social given
present several order national possible rather second face per among form important
often things looked early white case become large big need four within felt
along children saw best church ever least power development light thing seemed family
interest want members mind country area others done turned although open problem
sense service certain kind began thus means matter perhaps itself times human law
line above name example action company hands local show whole themselves history
`)

// The categories below feed the sentence grammar; the generator draws from
// each with a Zipf distribution, so early words are frequent.
var nouns = strings.Fields(`
market garden river bridge station harbour valley mountain forest meadow island
village library museum gallery theatre concert festival recipe kitchen bread butter
coffee morning evening weather season winter summer spring autumn journey travel
ticket platform engine carriage signal timetable delay traffic street avenue corner
window door table chair lamp book letter paper pencil notebook story chapter author
reader editor publisher article column review interview report survey research study
analysis method result evidence theory model design pattern structure process
network server client request response cache memory storage database query index
version release update patch feature option setting default value measure benchmark
latency throughput capacity budget schedule meeting project team manager engineer
developer designer customer user visitor member owner partner supplier product price
quality standard policy strategy plan goal target progress growth decline change
improvement challenge opportunity solution support training practice lesson teacher
student university college campus course degree science physics chemistry biology
geography economics politics philosophy language music painting sculpture photograph
camera picture image colour shape texture surface material wood stone glass metal
cotton wool leather silk orchard vineyard harvest apple cherry pear plum grape lemon
orange onion garlic pepper tomato potato carrot cabbage lettuce cucumber pumpkin
cheese yoghurt honey sugar salt flour oven stove kettle teapot basket bottle jar
`)

var adjectives = strings.Fields(`
careful quiet bright gentle sudden steady narrow broad shallow deep ancient modern
simple complex rapid gradual rough smooth heavy light warm cold fresh stale rich poor
happy curious honest patient brave proud humble clever eager calm busy lively
remarkable ordinary unusual familiar distant nearby central northern southern eastern
western coastal rural urban seasonal annual monthly weekly daily hourly regular rare
`)

var verbs = strings.Fields(`
walk run climb swim read write speak listen watch build repair paint cook bake grow
plant carry follow lead share teach learn explain describe discover explore measure
compare collect gather arrange prepare deliver receive publish announce celebrate
remember imagine wonder notice consider suggest improve reduce increase maintain
`)

var adverbs = strings.Fields(`
quickly slowly carefully quietly suddenly easily rarely nearly finally recently
usually certainly clearly simply gently briefly mostly partly largely entirely
`)

var (
	determiners  = strings.Fields("the the the the a a this every our their each that")
	auxiliaries  = strings.Fields("will will can could should may might would must did not will not")
	prepositions = strings.Fields("in in on at with from for near after before during under over through across beside")
	conjunctions = strings.Fields("and and but while because although since so")
)

// words is every word above: titles and tags draw from it.
var words = append(append(append(append(append([]string{}, nouns...), common...), adjectives...), verbs...), adverbs...)

// firstNames and lastNames make author and commenter names.
var firstNames = strings.Fields(`Alice Bruno Clara David Elena Farid Grace Hugo Ines
Jonas Karin Luca Maya Nils Olga Pavel Quinn Rosa Samir Tara Umberto Vera Walter Xenia
Yusuf Zoe Amara Boris Chloe Dmitri`)

var lastNames = strings.Fields(`Anderson Becker Costa Dubois Eriksen Fischer Garcia
Hansen Ivanova Jensen Kowalski Laurent Moreau Novak Okafor Petrov Quintero Rossi Schmidt
Tanaka Ueda Varga Weber Xu Yilmaz Zimmermann`)

var months = strings.Fields(`January February March April May June July August
September October November December`)

var sections = strings.Fields(`News Features Culture Science Travel Food Technology
Business Opinion Sport Books Music Gardens Local`)

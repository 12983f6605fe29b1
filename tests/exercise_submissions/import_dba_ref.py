# expect: forbidden
from dba_ref.gram import gram

package unifiedevent

// Layer is where in the stack an event was observed. The numeric order is the root-cause
// preference of the correlation design: when two candidate causes are equally early, the lower
// layer wins, because a kernel OOM kill explains a refused connection and not the other way round.
type Layer uint8

const (
	LayerUnknown Layer = iota
	LayerKernel
	LayerContainer
	LayerKubernetes
	LayerNetwork
	LayerStorage
	LayerApplication
	LayerTrace
	layerCount
)

var layerNames = [layerCount]string{
	LayerUnknown:     "unknown",
	LayerKernel:      "kernel",
	LayerContainer:   "container",
	LayerKubernetes:  "kubernetes",
	LayerNetwork:     "network",
	LayerStorage:     "storage",
	LayerApplication: "application",
	LayerTrace:       "trace",
}

// LayerCount is the number of layers including LayerUnknown, for arrays indexed by Layer.
const LayerCount = int(layerCount)

func (l Layer) String() string {
	if l >= layerCount {
		return layerNames[LayerUnknown]
	}
	return layerNames[l]
}

// Layers lists the known layers in root-cause preference order, without LayerUnknown.
func Layers() []Layer {
	return []Layer{LayerKernel, LayerContainer, LayerKubernetes, LayerNetwork, LayerStorage, LayerApplication, LayerTrace}
}

// ParseLayer returns the layer named s, or false when s names none.
func ParseLayer(s string) (Layer, bool) {
	for l := LayerKernel; l < layerCount; l++ {
		if layerNames[l] == s {
			return l, true
		}
	}
	return LayerUnknown, false
}

// Category says what kind of trouble an event is about, across layers.
type Category string

const (
	CategoryMemory       Category = "memory"
	CategoryProcess      Category = "process"
	CategoryNetwork      Category = "network"
	CategoryStorage      Category = "storage"
	CategoryAvailability Category = "availability"
	CategoryError        Category = "error"
	CategoryLatency      Category = "latency"
	CategoryScheduling   Category = "scheduling"
	CategoryConfig       Category = "config"
)

// Categories lists every category.
func Categories() []Category {
	return []Category{CategoryMemory, CategoryProcess, CategoryNetwork, CategoryStorage, CategoryAvailability,
		CategoryError, CategoryLatency, CategoryScheduling, CategoryConfig}
}
